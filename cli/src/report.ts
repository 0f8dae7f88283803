/**
 * `metaloop report`: one self-contained HTML page about a run — inline SVG plots of the
 * meta-train loss (before and after adaptation) and of the evaluations against the step, the
 * timings, the checkpoints and the spec. No script, no stylesheet or font from the network.
 *
 * Every plotted series is one `<polyline data-series="…" points="x,y …">` with one point per
 * recorded step (or evaluation); evaluations also get one `<circle>` per point.
 */
import { type HistoryJson, specToYaml } from '@metaloop/shared';
import { returnSections } from './report-returns.js';
import { escapeHtml, fmt, svgPlot, type Series } from './svg-plot.js';

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];

export interface ReportInput {
  /** The run record as `recordJson` makes it. */
  readonly record: Record<string, unknown>;
  readonly history: HistoryJson;
  /** When the report was made (Unix ms). */
  readonly generatedMs?: number;
}

const iso = (ms: unknown) => (typeof ms === 'number' && ms > 0 ? new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC') : '-');

/** The whole page. */
export function renderReport(input: ReportInput): string {
  const r = input.record;
  const h = input.history;
  const runId = String(r.runId ?? h.runId);
  const trainPlot = svgPlot({ id: 'train-loss', title: 'Meta-train query loss (mean over the meta-batch)', xLabel: 'meta-step', yLabel: 'loss' }, [
    { name: 'before adaptation', color: COLORS[0]!, xs: h.steps, ys: h.preLoss },
    { name: 'after adaptation', color: COLORS[1]!, xs: h.steps, ys: h.postLoss },
  ]);
  const evalSteps = h.evals.map((e) => e.step);
  const inner = h.evals[0]?.innerSteps ?? [];
  const evalSeries: Series[] = [
    { name: 'held-out, 0 steps', color: COLORS[0]!, xs: evalSteps, ys: h.evals.map((e) => e.preLoss), errors: h.evals.map((e) => e.preLossCi95), markers: true },
  ];
  inner.forEach((k, j) => {
    evalSeries.push({
      name: `held-out, ${k} step${k === 1 ? '' : 's'}`,
      color: COLORS[(j + 1) % COLORS.length]!,
      xs: evalSteps,
      ys: h.evals.map((e) => e.postLoss[j] ?? Number.NaN),
      errors: h.evals.map((e) => e.lossCi95?.[j]),
      markers: true,
    });
  });
  const evalPlot = svgPlot({ id: 'eval-loss', title: 'Held-out evaluation: query loss after k inner steps', xLabel: 'meta-step', yLabel: 'loss' }, evalSeries);
  const hasAcc = h.evals.some((e) => e.accuracy.length > 0);
  const accPlot = hasAcc
    ? svgPlot(
        { id: 'eval-accuracy', title: 'Held-out evaluation: accuracy', xLabel: 'meta-step', yLabel: 'accuracy' },
        inner.map((k, j) => ({
          name: `${k} step${k === 1 ? '' : 's'}`,
          color: COLORS[(j + 1) % COLORS.length]!,
          xs: evalSteps,
          ys: h.evals.map((e) => e.accuracy[j] ?? Number.NaN),
          errors: h.evals.map((e) => e.ci95[j]),
          markers: true,
        })),
      )
    : '';
  // Throughput: meta-steps per second over windows of ~1/50 of the run.
  const win = Math.max(1, Math.floor(h.steps.length / 50));
  const rateX: number[] = [];
  const rateY: number[] = [];
  for (let i = win; i < h.steps.length; i += win) {
    const dt = (h.timeMs[i]! - h.timeMs[i - win]!) / 1000;
    if (dt > 0) {
      rateX.push(h.steps[i]!);
      rateY.push((h.steps[i]! - h.steps[i - win]!) / dt);
    }
  }
  const ratePlot = svgPlot({ id: 'throughput', title: 'Throughput', xLabel: 'meta-step', yLabel: 'meta-steps / s' }, [{ name: `steps/s (window ${win})`, color: COLORS[2]!, xs: rateX, ys: rateY }]);
  const pm = (v: number | undefined) => (v !== undefined && v > 0 ? ` ± ${fmt(v)}` : '');
  const evalRows = h.evals
    .map((e) => {
      // One cell per inner-step count of the evaluation (postLoss[j] is the loss after innerSteps[j]).
      const cells = e.postLoss.map((loss, j) => {
        const acc = e.accuracy[j] !== undefined ? ` (acc ${fmt(e.accuracy[j])}${pm(e.ci95[j])})` : '';
        return `<td>${fmt(loss)}${pm(e.lossCi95?.[j])}${acc}</td>`;
      });
      return `<tr><td>${e.step}</td><td>${e.tasks}</td><td>${fmt(e.preLoss)}${pm(e.preLossCi95)}</td>${cells.join('')}<td>${iso(e.timeMs)}</td></tr>`;
    })
    .join('\n');
  const timing: [string, string][] = [
    ['state', String(r.state ?? '')],
    ['steps', `${String(r.step ?? 0)} / ${String(r.steps ?? 0)}`],
    ['created', iso(r.createdMs)],
    ['started', iso(r.startedMs)],
    ['finished', iso(r.finishedMs)],
    ['time running', `${Number(r.seconds ?? 0).toFixed(1)} s`],
    ['speed (last session)', `${fmt(Number(r.stepsPerSec ?? 0))} meta-steps/s, ${fmt(Number(r.tasksPerSec ?? 0))} tasks/s`],
    ['checkpoints', h.checkpoints.map((c) => String(c.step)).join(', ') || '-'],
    ['params sha256', String(r.paramsSha256 ?? '')],
  ];
  if (r.error) timing.push(['error', String(r.error)]);
  // Meta-RL runs: returns and gains from adaptation in place of the loss plots and table.
  const rl = h.preReturn !== undefined ? returnSections(h, iso) : null;
  const css = `body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:980px;color:#222}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
pre{background:#f6f6f6;padding:10px;overflow:auto}svg.plot{display:block;margin:8px 0}svg text{font-size:11px;fill:#333}
svg text.title{font-size:13px;font-weight:600}svg .frame{fill:none;stroke:#999}svg .grid{stroke:#eee}`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Metaloop run ${escapeHtml(runId)}</title>
<style>${css}</style>
</head>
<body>
<h1>Metaloop run <code>${escapeHtml(runId)}</code> (${escapeHtml(String(r.name ?? ''))})</h1>
<p>${h.steps.length} recorded meta-step${h.steps.length === 1 ? '' : 's'}, ${h.evals.length} evaluation${h.evals.length === 1 ? '' : 's'}. Generated ${iso(input.generatedMs ?? Date.now())}.</p>
<h2>Meta-training</h2>
${rl ? rl.train : trainPlot}
<h2>Evaluation</h2>
<p>Mean over the same held-out tasks at every evaluation; bars: 95% confidence intervals (1.96·s/√n).</p>
${rl ? `${rl.evals}
${rl.table}` : `${evalPlot}
${accPlot}
<table id="evals"><tr><th>step</th><th>tasks</th><th>loss, 0 steps</th>${inner.map((k) => `<th>loss after ${k} step${k === 1 ? '' : 's'}${hasAcc ? ' (accuracy)' : ''}</th>`).join('')}<th>time</th></tr>
${evalRows}
</table>`}
<h2>Timings</h2>
<table id="timings">${timing.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join('')}</table>
${ratePlot}
<h2>Spec</h2>
<pre id="spec">${escapeHtml(specToYaml(r.spec ?? null))}</pre>
</body>
</html>
`;
}
