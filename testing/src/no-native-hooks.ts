/** Module resolve hook for tests: `@tensorflow/tfjs-node(-gpu)` behave as if not installed. */
export async function resolve(
  specifier: string,
  context: unknown,
  next: (specifier: string, context: unknown) => Promise<unknown>,
): Promise<unknown> {
  if (/^@tensorflow\/tfjs-node(-gpu)?($|\/)/.test(specifier)) {
    const err = new Error(`Cannot find package '${specifier}' (hidden by @metaloop/testing/no-native)`) as Error & { code: string };
    err.code = 'ERR_MODULE_NOT_FOUND';
    throw err;
  }
  return next(specifier, context);
}
