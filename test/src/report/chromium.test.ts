/**
 * Issue 16 item 4: `metaloop report`'s page as a browser draws it. Reports with 1, 2 and many
 * evaluations (regression and classification) are loaded in headless Chromium (Debian's
 * `chromium`), which measures every drawn element of every plot with getBBox(); the test asserts
 * that markers and 95% CI bars stay inside the plot frame, that the title is above it, that the
 * legend fits the picture, that x ticks are distinct whole steps and that a single evaluation sits
 * in the middle. Screenshots are written to a temporary directory (its path is logged) to look at.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { renderReport } from '@metaloop/cli';
import type { HistoryEval, HistoryJson } from '@metaloop/shared';
import { childPids, type Ran, requireExecutable, runCommand } from '@metaloop/testing';

const CHROMIUM = requireExecutable('/usr/bin/chromium', 'chromium (headless, for the report screenshots)', 'apt-get install -y chromium');
const DIR = mkdtempSync(join(tmpdir(), 'metaloop-report-shots-'));
const pids = childPids();

function chromium(args: readonly string[], timeoutMs = 120_000): Promise<Ran> {
  return runCommand(pids, CHROMIUM, ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', `--user-data-dir=${join(DIR, 'profile')}`, ...args], { timeoutMs });
}

/** A deterministic history: `evals` evaluations every `every` steps of a run of evals·every steps. */
function history(evals: number, every: number, classification: boolean): HistoryJson {
  const steps = Array.from({ length: evals * every }, (_, i) => i + 1);
  const decay = (s: number) => 0.3 + 2.7 * Math.exp(-s / (every * Math.max(1, evals) * 0.3));
  const ev: HistoryEval[] = Array.from({ length: evals }, (_, i) => {
    const step = (i + 1) * every;
    const pre = decay(step) + 1;
    const post = [decay(step) * 0.8, decay(step) * 0.5];
    return {
      step,
      tasks: 600,
      innerSteps: [1, 10],
      preLoss: pre,
      postLoss: post,
      accuracy: classification ? [0.4 + 0.3 * (1 - decay(step) / 3), 0.5 + 0.4 * (1 - decay(step) / 3)] : [],
      ci95: classification ? [0.03, 0.02] : post.map((p) => p * 0.4),
      lossCi95: post.map((p) => p * 0.4),
      preLossCi95: pre * 0.3,
      timeMs: 1_700_000_000_000 + step * 100,
    };
  });
  return {
    version: 1,
    runId: 'report-test-000000',
    steps,
    preLoss: steps.map((s) => decay(s) + 0.5),
    postLoss: steps.map((s) => decay(s)),
    timeMs: steps.map((s) => 1_700_000_000_000 + s * 100),
    evals: ev,
    checkpoints: ev.map((e) => ({ step: e.step, timeMs: e.timeMs })),
    states: [],
  };
}

const spec = {
  name: 'report-test',
  seed: 1,
  task: { family: 'synthetic-glyphs', ways: 5, shots: 1, queries: 5 },
  model: { kind: 'conv4', filters: 32 },
  outer: { optimizer: 'adam', lr: 0.001, metaBatch: 16, steps: 500, shardSize: 4 },
};

/** What the page measures about itself in Chromium: injected into a copy of the report (the report has no script). */
const MEASURE = `<script>
addEventListener('load', () => {
  const out = [];
  // Boxes as drawn (transforms applied), relative to the picture's top left corner.
  const rel = (el, box) => { const b = el.getBoundingClientRect(); return { x: b.x - box.x, y: b.y - box.y, w: b.width, h: b.height }; };
  for (const svg of document.querySelectorAll('svg.plot')) {
    const box = svg.getBoundingClientRect();
    const frame = svg.querySelector('rect.frame');
    const f = frame ? rel(frame, box) : null;
    const items = [...svg.querySelectorAll('circle, line.ci, polyline')].map((el) => {
      const b = rel(el, box);
      return { tag: el.tagName + (el.getAttribute('class') ? '.' + el.getAttribute('class') : ''), x: b.x, y: b.y, w: b.w, h: b.h, cx: el.tagName === 'circle' ? Number(el.getAttribute('cx')) : null };
    });
    const texts = [...svg.querySelectorAll('text')].map((t) => { const b = rel(t, box); return { text: t.textContent, cls: t.getAttribute('class') || '', x: b.x, y: b.y, w: b.w, h: b.h, anchorY: Number(t.getAttribute('y')) }; });
    out.push({ id: svg.id, width: box.width, height: box.height, frame: f, items, texts });
  }
  const pre = document.createElement('pre');
  pre.id = 'measured';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>`;

interface Box { x: number; y: number; w: number; h: number }
interface Measured {
  id: string;
  width: number;
  height: number;
  frame: Box | null;
  items: (Box & { tag: string; cx: number | null })[];
  texts: (Box & { text: string; cls: string; anchorY: number })[];
}

async function measure(name: string, html: string): Promise<Measured[]> {
  const page = join(DIR, `${name}.html`);
  writeFileSync(page, html);
  const probe = join(DIR, `${name}.measure.html`);
  writeFileSync(probe, html.replace('</body>', `${MEASURE}</body>`));
  const shot = await chromium([`--screenshot=${join(DIR, `${name}.png`)}`, '--window-size=1000,2200', `file://${page}`]);
  assert.equal(shot.code, 0, `chromium screenshot: exit ${shot.code}\n${shot.stderr.slice(-2000)}`);
  assert.ok(readFileSync(join(DIR, `${name}.png`)).subarray(1, 4).toString() === 'PNG', 'a PNG screenshot');
  const dom = await chromium(['--dump-dom', '--virtual-time-budget=5000', `file://${probe}`]);
  assert.equal(dom.code, 0, `chromium --dump-dom: exit ${dom.code}\n${dom.stderr.slice(-2000)}`);
  const m = /<pre id="measured">([^<]*)<\/pre>/.exec(dom.stdout);
  assert.ok(m, `the page did not measure itself:\n${dom.stdout.slice(-1000)}`);
  return JSON.parse(m[1]!.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')) as Measured[];
}

const inside = (b: Box, f: Box, tol = 0.5) => b.x >= f.x - tol && b.y >= f.y - tol && b.x + b.w <= f.x + f.w + tol && b.y + b.h <= f.y + f.h + tol;

/** The x tick labels: the texts just under the frame (its y attribute is the frame's bottom + 16). */
const xTicks = (p: Measured) => p.texts.filter((t) => t.cls === '' && Math.abs(t.anchorY - (p.frame!.y + p.frame!.h + 16)) < 1).map((t) => t.text);

function checkPlots(plots: Measured[], evals: number): void {
  const byId = new Map(plots.map((p) => [p.id, p]));
  for (const id of ['train-loss', 'eval-loss']) assert.ok(byId.has(id), `no plot ${id}`);
  for (const p of plots) {
    if (!p.frame) continue; // an empty plot ("no data recorded")
    const f = p.frame;
    for (const it of p.items) assert.ok(inside(it, f), `${p.id}: ${it.tag} at ${JSON.stringify(it)} leaves the frame ${JSON.stringify(f)}`);
    const title = p.texts.find((t) => t.cls === 'title')!;
    assert.ok(title.y + title.h <= f.y + 0.5, `${p.id}: the title overlaps the frame`);
    for (const t of p.texts) assert.ok(t.x >= -0.5 && t.x + t.w <= p.width + 0.5 && t.y >= -0.5 && t.y + t.h <= p.height + 0.5, `${p.id}: text ${JSON.stringify(t.text)} is cut off (${JSON.stringify(t)}, picture ${p.width}×${p.height})`);
    // x tick labels: under the frame, distinct
    const ticks = xTicks(p);
    assert.ok(ticks.length >= 1, `${p.id}: no x ticks`);
    assert.equal(new Set(ticks).size, ticks.length, `${p.id}: repeated x tick labels ${ticks.join(' ')}`);
  }
  const ev = byId.get('eval-loss')!;
  const xs = new Set(ev.items.filter((i) => i.tag === 'circle').map((i) => i.cx));
  assert.equal(xs.size, evals, 'one x position per evaluation');
  if (evals === 1) {
    const f = ev.frame!;
    const [cx] = [...xs];
    assert.ok(Math.abs(cx! - (f.x + f.w / 2)) < 2, `a single evaluation is drawn in the middle (x ${cx}, frame ${f.x}..${f.x + f.w})`);
    const ticks = xTicks(ev);
    assert.deepEqual(ticks, [String(500)], 'one tick: the evaluated step');
  }
}

describe('report in headless Chromium', { timeout: 600_000 }, () => {
  after(() => console.log(`report screenshots in ${DIR}`));
  for (const [evals, every] of [
    [1, 500],
    [2, 250],
    [40, 25],
  ] as const) {
    for (const classification of [false, true]) {
      it(`${evals} evaluation${evals === 1 ? '' : 's'}${classification ? ', classification' : ''}: every mark inside its frame, titles clear, ticks distinct`, async () => {
        const h = history(evals, every, classification);
        const html = renderReport({
          record: { runId: h.runId, name: 'report-test', state: 'succeeded', step: evals * every, steps: evals * every, seconds: 12.5, spec },
          history: h,
          generatedMs: 1_700_000_100_000,
        });
        // distinct column names, the spec as YAML
        const heads = [...html.matchAll(/<th>([^<]*)<\/th>/g)].map((m) => m[1]!);
        assert.equal(new Set(heads).size, heads.length, `repeated column names: ${heads.join(' | ')}`);
        assert.match(html, /<pre id="spec">name: report-test\nseed: 1\ntask: \{ family: synthetic-glyphs/);
        const plots = await measure(`report-${evals}${classification ? '-acc' : ''}`, html);
        if (classification) assert.ok(plots.some((p) => p.id === 'eval-accuracy'), 'an accuracy plot for classification');
        checkPlots(plots, evals);
      });
    }
  }
});
