/**
 * The alerting rules fire (issue 15, item 3). `promtool test rules` runs the unit tests of
 * deploy/prometheus/metaloop-rules.test.yaml against the rule file and against the Helm chart's copy
 * of it; every alert of the rule file must have a case where it fires on a synthetic series and a
 * case where it stays quiet on a healthy one (so a new alert without tests fails here); and every
 * alert's firing case must bite: with that alert's expression replaced by one that never fires,
 * promtool must fail.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { requireExecutable } from './harness.js';

const PROMTOOL = requireExecutable(process.env.PROMTOOL ?? '/usr/bin/promtool', 'promtool', 'apt-get install -y prometheus (or set PROMTOOL)');

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const RULES = join(repo, 'deploy/prometheus/metaloop-rules.yaml');
const RULE_TESTS = join(repo, 'deploy/prometheus/metaloop-rules.test.yaml');
const CHART_RULES = join(repo, 'helm/metaloop/files/metaloop-rules.yaml');

interface AlertRule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
}
interface RuleFile {
  groups: { name: string; rules: AlertRule[] }[];
}
interface AlertRuleTest {
  eval_time: string;
  alertname: string;
  exp_alerts?: unknown[] | null;
}
interface RuleTestFile {
  rule_files: string[];
  tests: { name?: string; alert_rule_test?: AlertRuleTest[] }[];
}

/** Prometheus durations as used in these files (`90s`, `5m`, `1h30m`, `0m`), in seconds. */
function seconds(duration: string | undefined): number {
  if (duration === undefined) return 0;
  const unit: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86_400, w: 604_800, y: 31_536_000 };
  const parts = [...duration.matchAll(/(\d+)(ms|s|m|h|d|w|y)/g)];
  assert.ok(parts.length > 0 && parts.map((p) => p[0]).join('') === duration, `not a Prometheus duration: ${duration}`);
  return parts.reduce((s, p) => s + Number(p[1]) * (unit[p[2] ?? ''] ?? NaN), 0);
}

function promtoolTest(testFile: string): { status: number | null; out: string } {
  const r = spawnSync(PROMTOOL, ['test', 'rules', testFile], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw new Error(`promtool could not run (${PROMTOOL}): ${r.error.message}`);
  return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
}

const alertsOf = (file: RuleFile): AlertRule[] => file.groups.flatMap((g) => g.rules).filter((r) => r.alert !== undefined);

describe('alerting rules: promtool test rules', () => {
  const rules = parseYaml(readFileSync(RULES, 'utf8')) as RuleFile;
  const ruleTests = parseYaml(readFileSync(RULE_TESTS, 'utf8')) as RuleTestFile;
  const alerts = alertsOf(rules);
  const tmp = mkdtempSync(join(tmpdir(), 'metaloop-rules-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));

  /** The unit tests run against `ruleFile` (copied into a temp dir beside a copy of the tests). */
  function runAgainst(ruleFile: string, label: string): { status: number | null; out: string } {
    const dir = mkdtempSync(join(tmp, `${label}-`));
    copyFileSync(ruleFile, join(dir, 'rules.yaml'));
    writeFileSync(join(dir, 'tests.yaml'), stringifyYaml({ ...ruleTests, rule_files: ['rules.yaml'] }));
    return promtoolTest(join(dir, 'tests.yaml'));
  }

  it('the unit tests pass on deploy/prometheus/metaloop-rules.yaml', (t) => {
    assert.deepEqual(ruleTests.rule_files, ['metaloop-rules.yaml'], `${RULE_TESTS} tests the rule file beside it`);
    const r = promtoolTest(RULE_TESTS);
    t.diagnostic(r.out.trim().replace(/\s+/g, ' '));
    assert.equal(r.status, 0, `promtool test rules ${RULE_TESTS} failed:\n${r.out}`);
    assert.match(r.out, /SUCCESS/);
  });

  it("the same unit tests pass on the Helm chart's copy (helm/metaloop/files/metaloop-rules.yaml)", () => {
    const r = runAgainst(CHART_RULES, 'chart');
    assert.equal(r.status, 0, `promtool test rules against ${CHART_RULES} failed:\n${r.out}`);
  });

  it('every alert has a case where it fires and a healthy case where it stays quiet past its `for:`', (t) => {
    assert.ok(alerts.length > 0, `${RULES} has no alerts`);
    const cases = ruleTests.tests.flatMap((c) => c.alert_rule_test ?? []);
    const known = new Set(alerts.map((a) => a.alert));
    for (const c of cases) assert.ok(known.has(c.alertname), `${RULE_TESTS} tests ${c.alertname}, which ${RULES} does not define`);
    const missing: string[] = [];
    for (const a of alerts) {
      const mine = cases.filter((c) => c.alertname === a.alert);
      const fires = mine.filter((c) => (c.exp_alerts ?? []).length > 0);
      // Quiet after `for:` has elapsed: the expression is false there, not merely still pending.
      const quiet = mine.filter((c) => (c.exp_alerts ?? []).length === 0 && seconds(c.eval_time) > seconds(a.for));
      if (fires.length === 0) missing.push(`${a.alert}: no case where it fires (an alert_rule_test with exp_alerts)`);
      if (quiet.length === 0) missing.push(`${a.alert}: no healthy case (exp_alerts: [] at an eval_time after its for: ${a.for ?? '0s'})`);
      t.diagnostic(`${a.alert}: ${fires.length} firing, ${quiet.length} quiet case(s)`);
    }
    assert.deepEqual(missing, [], `add cases to ${RULE_TESTS}`);
  });

  it("every alert's firing cases fail when its expression never fires", () => {
    // One promtool run with every alert's expr replaced by one that is never true: promtool must
    // report a failed case for each alert (it reports every failing case, not only the first).
    const broken: RuleFile = {
      groups: rules.groups.map((g) => ({ ...g, rules: g.rules.map((r) => (r.alert !== undefined ? { ...r, expr: 'vector(0) > 1' } : r)) })),
    };
    const file = join(tmp, 'never-firing.yaml');
    writeFileSync(file, stringifyYaml(broken));
    const r = runAgainst(file, 'never-firing');
    assert.notEqual(r.status, 0, `promtool passed with every alert disabled:\n${r.out}`);
    const unchecked = alerts.filter((a) => !new RegExp(`alertname: ${a.alert},`).test(r.out)).map((a) => a.alert);
    assert.deepEqual(unchecked, [], `promtool did not notice these alerts never fire:\n${r.out}`);
  });
});
