import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exitCode, judgeGates, parseGate, regression, withDefaultGates, type Gate } from './gates.js';
import type { LoadtestResult, TargetResult } from './result.js';

// Gates and the regression verdict on hand-made results: units, per-group gates, the
// exit codes, and the noise floor.

function target(over: Partial<TargetResult> = {}): TargetResult {
  const lat = { p50: 4, p90: 8, p99: 40, p999: 90, max: 120, mean: 5 };
  return {
    url: 'http://127.0.0.1:1', sent: 10_000, answered: 10_000, sentPerS: 1000, answeredPerS: 1000,
    status: { s2xx: 9000, s3xx: 0, s4xx: 0, s401: 0, s429: 1000, s5xx: 5, noAnswer: 0 }, errorRate: 0.0005, errorExamples: [],
    latency: lat, latencyUncorrected: lat, spectrum: [], overAdmitted: 0, inflightJudged: true, refusalP99Ms: 3, wronglyRefused: 2, headerIssues: 0, headerIssueExamples: [],
    groups: [{
      group: 'pro', kind: 'normal', sent: 4000, admitted: 4000, units: 4000, refused: 0, unauthorized: 0, ambiguous: 0, overAdmitted: 3, overAdmittedBy: { rate: 3 }, inflightOnly: 0,
      wronglyRefused: 0, headerIssues: 0, allowed: 5000, authErrors: 0, plan: null, latency: { ...lat, p99: 70 }, errors: 4, worstKeys: [],
    }],
    timeline: [], backends: {}, ...over,
  };
}

function result(t: TargetResult, valid = true): LoadtestResult {
  return {
    version: 1, scenario: 's', startedAt: '', durationS: 10, valid, invalidReasons: valid ? [] : ['late'], targets: [t],
    generator: {} as LoadtestResult['generator'], oracle: { toleranceMs: 5, decisionWindowMs: 1000 }, cost: null, gates: [], regression: null, exitCode: 0,
  };
}

function gate(expr: string): Gate {
  const g = parseGate(expr, ['pro']);
  assert.ok(typeof g !== 'string', g as string);
  return g;
}

test('gates parse with their units, and bad ones say why', () => {
  assert.equal(gate('p99<50ms').value, 50);
  assert.equal(gate('p99 < 0.5s').value, 500);
  assert.equal(gate('max<=900us').value, 0.9);
  assert.equal(gate('errors<0.1%').value, 0.001);
  assert.equal(gate('errors<0.001').value, 0.001);
  assert.deepEqual([gate('pro.over_admitted==0').group, gate('pro.over_admitted==0').metric], ['pro', 'over_admitted']);
  assert.match(parseGate('p99<50', []) as string, /a latency needs a unit/);
  assert.match(parseGate('latency<5ms', []) as string, /unknown metric latency/);
  assert.match(parseGate('free.p99<5ms', ['pro']) as string, /no group free/);
  assert.match(parseGate('p99 about 5ms', []) as string, /expected \[group\.\]metric op value/);
});

test('gates judge the main target and each group; exit 0 passed, 1 failed, 3 invalid', () => {
  const r = result(target());
  r.gates = judgeGates(r, ['p99<50ms', 'errors<0.1%', 'over_admitted==0', 'pro.p99<50ms', 'pro.over_admitted==0', 'wrongly_refused<0.1%'].map(gate));
  assert.deepEqual(r.gates.map((g) => g.passed), [true, true, true, false, false, true]);
  assert.equal(r.gates[3]!.detail, 'pro: p99 = 70.0 ms');
  assert.equal(exitCode(r), 1);
  r.gates = judgeGates(r, [gate('p99<50ms')]);
  assert.equal(exitCode(r), 0);
  const invalid = result(target(), false);
  invalid.gates = judgeGates(invalid, [gate('p99<1ms')]);
  assert.equal(exitCode(invalid), 3, 'an invalid run says nothing about the target, whatever its gates');
});

test('zero over-admission is a gate unless the user set one', () => {
  assert.deepEqual(withDefaultGates(['p99<1s']), ['over_admitted==0', 'p99<1s']);
  assert.deepEqual(withDefaultGates(['over_admitted<=5']), ['over_admitted<=5']);
});

test('against a baseline: changes inside the noise floor are "same", beyond it regression or improvement', () => {
  const base = target();
  const same = regression(target({ latency: { ...base.latency, p50: 4.3, p99: 45 } }), base);
  assert.deepEqual(same.map((v) => v.verdict), ['same', 'same', 'same', 'same', 'same']);
  const worse = regression(target({ latency: { ...base.latency, p99: 52 }, answeredPerS: 900, overAdmitted: 1 }), base);
  assert.deepEqual(worse.map((v) => [v.metric, v.verdict]), [['p50_ms', 'same'], ['p99_ms', 'regression'], ['answered_per_s', 'regression'], ['error_rate', 'same'], ['over_admitted', 'regression']]);
  const r = result(target());
  r.regression = { baseline: 'old.json', verdicts: worse };
  assert.equal(exitCode(r), 1);
  const better = regression(target({ latency: { ...base.latency, p50: 2 } }), base);
  assert.equal(better[0]!.verdict, 'improvement');
});
