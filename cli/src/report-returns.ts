/**
 * The meta-RL parts of `metaloop report` (docs/meta-rl.md): the meta-train return of θ's and of the
 * adapted θ′'s rollouts against the step, the held-out return after 0..K inner steps, the paired
 * gain from adaptation with its 95% CI, and the evaluation table, in place of the loss plots.
 */
import type { HistoryJson } from '@metaloop/shared';
import { svgPlot, type Series } from './svg-plot.js';

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];
const fmt = (x: number) => Number(x.toPrecision(3)).toString();
const pm = (v: number | undefined) => (v !== undefined && v > 0 ? ` ± ${fmt(v)}` : '');
const steps = (k: number) => `${k} step${k === 1 ? '' : 's'}`;

export interface ReturnSections {
  readonly train: string;
  readonly evals: string;
  readonly table: string;
}

/** The plots and the table of a meta-RL run's history (one whose steps carry returns). */
export function returnSections(h: HistoryJson, iso: (ms: number) => string): ReturnSections {
  const train = svgPlot({ id: 'train-return', title: 'Meta-train return (mean episode return over the meta-batch)', xLabel: 'meta-step', yLabel: 'return' }, [
    { name: 'before adaptation', color: COLORS[0]!, xs: h.steps, ys: h.preReturn ?? [] },
    { name: 'after adaptation', color: COLORS[1]!, xs: h.steps, ys: h.postReturn ?? [] },
  ]);
  const evals = h.evals.filter((e) => e.postReturn !== undefined);
  const xs = evals.map((e) => e.step);
  const inner = evals[0]?.innerSteps ?? [];
  const returns: Series[] = [
    { name: 'held-out, 0 steps', color: COLORS[0]!, xs, ys: evals.map((e) => e.preReturn ?? Number.NaN), errors: evals.map((e) => e.preReturnCi95), markers: true },
    ...inner.map((k, j) => ({
      name: `held-out, ${steps(k)}`,
      color: COLORS[(j + 1) % COLORS.length]!,
      xs,
      ys: evals.map((e) => e.postReturn?.[j] ?? Number.NaN),
      errors: evals.map((e) => e.returnCi95?.[j]),
      markers: true,
    })),
  ];
  const gains: Series[] = inner.map((k, j) => ({
    name: `gain after ${steps(k)}`,
    color: COLORS[(j + 1) % COLORS.length]!,
    xs,
    ys: evals.map((e) => e.gain?.[j] ?? Number.NaN),
    errors: evals.map((e) => e.gainCi95?.[j]),
    markers: true,
  }));
  const plots =
    svgPlot({ id: 'eval-return', title: 'Held-out evaluation: mean episode return after k inner steps', xLabel: 'meta-step', yLabel: 'return' }, returns) +
    '\n' +
    svgPlot({ id: 'eval-gain', title: 'Held-out gain from adaptation: return after k steps − before (same tasks)', xLabel: 'meta-step', yLabel: 'return gain' }, gains);
  const rows = evals
    .map((e) => {
      const cells = (e.postReturn ?? []).map((r, j) => `<td>${fmt(r)}${pm(e.returnCi95?.[j])} (gain ${fmt(e.gain?.[j] ?? Number.NaN)}${pm(e.gainCi95?.[j])})</td>`);
      return `<tr><td>${e.step}</td><td>${e.tasks}</td><td>${fmt(e.preReturn ?? Number.NaN)}${pm(e.preReturnCi95)}</td>${cells.join('')}<td>${iso(e.timeMs)}</td></tr>`;
    })
    .join('\n');
  const table = `<table id="evals"><tr><th>step</th><th>tasks</th><th>return, 0 steps</th>${inner.map((k) => `<th>return after ${steps(k)} (gain)</th>`).join('')}<th>time</th></tr>\n${rows}\n</table>`;
  return { train, evals: plots, table };
}
