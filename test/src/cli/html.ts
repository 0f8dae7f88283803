/**
 * Minimal HTML checks for `metaloop report` (no parser dependency): a doctype, well-nested
 * elements (void elements and self-closed SVG elements excepted), and the points of the
 * `<polyline data-series=…>` elements of one `<svg id=…>`.
 */
import assert from 'node:assert/strict';

const VOID = new Set(['area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'link', 'meta', 'source', 'track', 'wbr']);

/** Throws unless the document has a doctype, one html/head/body and properly nested tags. */
export function checkHtml(html: string): void {
  assert.match(html, /^<!DOCTYPE html>/i, 'doctype');
  const stack: string[] = [];
  const tag = /<(\/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^\s=>/]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+))?)*)\s*(\/?)>/g;
  // Text must not hold a raw '<' that is not a tag (escaping checked).
  const stripped = html.replace(/^<!DOCTYPE html>/i, '').replace(/<style>[\s\S]*?<\/style>/, '<style></style>');
  let m: RegExpExecArray | null;
  let last = 0;
  while ((m = tag.exec(stripped))) {
    const between = stripped.slice(last, m.index);
    assert.ok(!between.includes('<'), `unescaped '<' or malformed tag near: ${JSON.stringify(between.slice(0, 80))}`);
    last = m.index + m[0].length;
    const [, closing, name, , selfClosing] = m;
    const n = name!.toLowerCase();
    if (closing) {
      const open = stack.pop();
      assert.equal(open, n, `</${n}> closes <${open}> at offset ${m.index}`);
    } else if (!selfClosing && !VOID.has(n)) {
      stack.push(n);
    }
  }
  assert.ok(!stripped.slice(last).includes('<'), 'malformed tag at the end');
  assert.deepEqual(stack, [], `unclosed elements: ${stack.join(', ')}`);
  for (const t of ['html', 'head', 'body']) assert.equal((html.match(new RegExp(`<${t}[\\s>]`, 'g')) ?? []).length, 1, `one <${t}>`);
}

/** The points of every `<polyline data-series="name">` inside `<svg id="svgId">`, by series name. */
export function polylinePoints(html: string, svgId: string): Record<string, [number, number][]> {
  const svg = new RegExp(`<svg[^>]*\\sid="${svgId}"[^>]*>([\\s\\S]*?)</svg>`).exec(html);
  assert.ok(svg, `no <svg id="${svgId}">`);
  const out: Record<string, [number, number][]> = {};
  for (const m of svg[1]!.matchAll(/<polyline data-series="([^"]*)" points="([^"]*)"/g)) {
    const name = m[1]!.replace(/&amp;/g, '&');
    out[name] = m[2]!.trim() === '' ? [] : m[2]!.trim().split(/\s+/).map((p) => p.split(',').map(Number) as [number, number]);
    for (const [x, y] of out[name]) assert.ok(Number.isFinite(x) && Number.isFinite(y), `bad point in ${name}`);
  }
  return out;
}
