/**
 * How a zod issue reads in our errors: one error map (`expected a whole number >= 1`, `expected one
 * of "valid", "same"`) used by the run spec (spec.ts) and by each layer's options (model/graph.ts),
 * and how a value is shown beside it (`got …`).
 */
import type { z } from 'zod';

/** The error map of every schema we parse user input with. */
export function issueText(iss: z.core.$ZodRawIssue): string | undefined {
  if (iss.code === 'invalid_type') return `expected ${iss.expected === 'int' ? 'a whole number' : iss.expected}`;
  if (iss.code === 'too_small') {
    const bound = iss.inclusive ? '>=' : '>';
    return iss.origin === 'array'
      ? `expected at least ${String(iss.minimum)} items`
      : `expected a ${iss.origin === 'int' ? 'whole number' : 'number'} ${bound} ${String(iss.minimum)}`;
  }
  if (iss.code === 'too_big') {
    const bound = iss.inclusive ? '<=' : '<';
    return iss.origin === 'array' ? `expected at most ${String(iss.maximum)} items` : `expected a number ${bound} ${String(iss.maximum)}`;
  }
  if (iss.code === 'invalid_value') return `expected one of ${iss.values.map((v) => JSON.stringify(v)).join(', ')}`;
  return undefined;
}

/** A value as an error message shows it (JSON, cut at 80 characters). */
export function showValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  try {
    const s = JSON.stringify(value);
    return s.length > 80 ? s.slice(0, 77) + '...' : s;
  } catch {
    // Reached only when JSON.stringify throws (a bigint, a cycle): String() is the intended fallback.
    // eslint-disable-next-line @typescript-eslint/no-base-to-string
    return String(value);
  }
}

/** The value at `path` inside `root` (undefined when there is none). */
export function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = root;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[key];
  }
  return cur;
}
