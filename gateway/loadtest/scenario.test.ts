import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { ConfigError } from '../config/load.js';
import { CLI } from '../../test/harness/gateway.js';
import { buildSchedule, expectedCount } from './schedule.js';
import { loadScenario, parseScenario, type Scenario } from './scenario.js';

// Scenario files: every mistake reported at once with its field; the shipped scenarios
// parse; and the schedule each profile makes has the shape it promises.

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sluice-scenario-'));
writeFileSync(join(dir, 'keys.txt'), 'k1\nk2\n# a comment\n\nk3\n');

function errorsOf(doc: object): string[] {
  try {
    parseScenario(stringify(doc), dir);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.errors];
    throw err;
  }
  return [];
}

const GROUP = { name: 'g', keys: { file: 'keys.txt' }, plan: { rate: 10, burst: 20 }, request: { path: '/x' } };
const BASE = { target: 'http://127.0.0.1:8080', duration_s: 10, arrival: { profile: 'constant', rate: 100 }, groups: [GROUP] };

function scenario(over: object): Scenario {
  return parseScenario(stringify({ ...BASE, ...over }), dir);
}

test('every problem is reported at once, each naming its field', () => {
  const errors = errorsOf({
    target: 'ftp://x', duration_s: -1, arrival: { profile: 'zigzag' }, colour: 'blue',
    groups: [
      { name: 'bad name!', keys: { count: 2 }, plan: { rate: -1, bogus: 1 }, choice: 'random', request: { method: 'G E T', path: 'x', options: 'big' } },
      { name: 'g2', keys: { file: 'keys.txt', count: 3 }, request: { body_dir: 'nowhere' } },
    ],
    generator: { workers: 0 }, oracle: { tolerance_ms: 'soon' },
  });
  const expected = [
    /^colour: unknown field/, /^target: must be an http:\/\/ or https:\/\/ URL/, /^duration_s: must be >= 0.1/,
    // An unknown profile is the one error: its fields are checked once the profile is known.
    /^arrival.profile: must be one of constant, poisson, ramp, steps, bursts, got "zigzag"/,
    /^groups\[0\].name: must be 1-64 of/, /^groups\[0\].keys.plan: is required/, /^groups\[0\].plan.bogus: unknown field/,
    /^groups\[0\].plan.rate: must be >= 0/, /^groups\[0\].choice: must be one of uniform, zipf/, /^groups\[0\].request.method: must be an HTTP method/,
    /^groups\[0\].request.path: must start with \//, /^groups\[0\].request.options: must be a mapping/,
    /^groups\[1\].keys: give either file, or count and plan/, /^groups\[1\].plan: is required/, /^groups\[1\].request.body_dir: ENOENT/,
    /^generator.workers: must be >= 1/, /^oracle.tolerance_ms: must be a number/,
  ];
  for (const re of expected) assert.ok(errors.some((e) => re.test(e)), `no error matching ${re}:\n${errors.join('\n')}`);
  assert.equal(errors.length, expected.length, errors.join('\n'));
});

test('the semantic pass reports beside the schema errors, on the parts the schema found sound', () => {
  assert.deepEqual(errorsOf({ ...BASE, groups: [{ ...GROUP, plan: { rate: 0.5 } }, { ...GROUP, name: 'h', request: { path: 'x', body_dir: 'nowhere' } }] }), [
    'groups[1].request.path: must start with /, got "x"',
    'groups[0].plan.burst: must be >= 1 when rate is set',
  ], 'no body_dir error for a request that is wrong already');
  assert.deepEqual(errorsOf({ ...BASE, groups: [GROUP, { ...GROUP, weight: 0 }], abusive: [{ ...GROUP, weight: 0, request: { body_dir: 'keys.txt' } }] }), [
    'groups[1].name: duplicate group name g',
    'abusive[0].name: duplicate group name g',
    `abusive[0].request.body_dir: ENOTDIR: not a directory, scandir '${join(dir, 'keys.txt')}'`,
  ]);
  assert.deepEqual(errorsOf({ ...BASE, groups: [] }), ['groups: at least one group (groups, abusive or invalid_keys) is required']);
  assert.deepEqual(errorsOf({ ...BASE, groups: [{ ...GROUP, weight: 0 }], invalid_keys: { weight: 0 } }), ['groups: every weight is 0: nothing would be sent']);
});

test('defaults come from the schema', () => {
  const s = parseScenario(stringify({ ...BASE, groups: [{ name: 'g', keys: { plan: 'free' }, plan: { rate: 2 } }], invalid_keys: {} }), dir);
  assert.deepEqual(s.groups[0], {
    name: 'g', kind: 'normal', weight: 1, keys: { kind: 'admin', count: 1, plan: 'free' },
    plan: { rate: 2, burst: 2, quotaDay: 0, quotaMonth: 0, maxInflight: 0 }, choice: 'uniform', zipfS: 1.1,
    request: { method: 'GET', path: '/', bodyFiles: [], headers: {}, cost: 1 },
    mix: [{ weight: 1, request: { method: 'GET', path: '/', bodyFiles: [], headers: {}, cost: 1 } }],
  });
  assert.deepEqual(s.groups[1]!.keys, { kind: 'invalid', count: 10 });
  assert.deepEqual({ name: s.name, seed: s.seed, generator: s.generator, oracle: s.oracle, gates: s.gates }, {
    name: 'scenario', seed: 1, gates: [],
    generator: { workers: 1, connections: 256, timeoutMs: 10_000, lateMs: 100, maxLateFraction: 0.05, maxLoopLagMs: 200 },
    oracle: { toleranceMs: 5, decisionWindowMs: 1000 },
  });
});

test('a mix: several kinds of request on one group\'s keys, each with its cost, drawn by weight from the seed', () => {
  const mixed = { ...GROUP, mix: [{ weight: 3, request: { path: '/cheap' } }, { weight: 1, request: { method: 'post', path: '/dear', cost: 5 } }] };
  const s = parseScenario(stringify({ ...BASE, groups: [mixed, { ...GROUP, name: 'h' }] }), dir);
  assert.deepEqual(s.groups[0]!.mix.map((m) => [m.weight, m.request.method, m.request.path, m.request.cost]), [[3, 'GET', '/cheap', 1], [1, 'POST', '/dear', 5]]);
  const sched = buildSchedule(s, [1, 1]);
  const variants = [0, 0];
  for (let i = 0; i < sched.at.length; i++) if (sched.group[i] === 0) variants[sched.variant[i]!]!++;
  assert.ok(variants[0]! > 2 * variants[1]! && variants[1]! > 0, `variants ${variants.join('/')}`);
  // A group without a mix draws nothing more: the schedule of a scenario without mixes is unchanged.
  const plain = buildSchedule(parseScenario(stringify({ ...BASE, groups: [GROUP, { ...GROUP, name: 'h' }] }), dir), [1, 1]);
  assert.ok(plain.variant.every((v) => v === 0));
  assert.deepEqual(errorsOf({ ...BASE, groups: [{ ...GROUP, mix: [{ weight: 0, request: {} }] }] }), ['groups[0].mix: every weight is 0: nothing would be sent']);
  assert.deepEqual(errorsOf({ ...BASE, groups: [{ ...GROUP, mix: [{ request: { cost: -1 } }] }] }), ['groups[0].mix[0].request.cost: must be >= 0, got -1']);
});

test('profiles: steps must add up to the duration, a burst must fit its period', () => {
  assert.deepEqual(errorsOf({ ...BASE, arrival: { profile: 'steps', steps: [{ rate: 1, duration_s: 4 }, { rate: 2, duration_s: 5 }] } }),
    ['arrival.steps: durations add up to 9 s, but duration_s is 10']);
  assert.deepEqual(errorsOf({ ...BASE, arrival: { profile: 'bursts', rate: 10, burst_rate: 100, every_s: 2, burst_s: 3 } }),
    ['arrival.burst_s: must be <= every_s (2), got 3']);
  assert.deepEqual(errorsOf({ ...BASE, arrival: { profile: 'ramp', from: 1 } }), ['arrival.to: is required']);
});

test('the shipped scenarios parse, and read their real images and keys', () => {
  const stack = loadScenario(join(ROOT, 'load-tests/scenarios/default-stack.yaml'));
  assert.equal(stack.target, 'http://127.0.0.1:8080');
  assert.ok(stack.durationS < 60, 'runs in under a minute');
  assert.ok(stack.groups.some((g) => g.kind === 'abusive') && stack.groups.some((g) => g.kind === 'invalid'));
  assert.ok(stack.groups[0]!.request.bodyFiles.length >= 6, 'a folder of real photos');
  const peak = loadScenario(join(ROOT, 'load-tests/scenarios/peak-50m-a-day.yaml'));
  // 50M a day is 579/s on average; the peak scenario plans for the busy hour.
  const n = expectedCount(peak);
  assert.ok(n / peak.durationS >= 50_000_000 / 86_400 * 2, `peak ${n / peak.durationS}/s`);
  assert.deepEqual(scenario({}).groups[0]!.keys, { kind: 'file', file: join(dir, 'keys.txt') });
});

test('a constant rate is evenly spaced: no bursts at second boundaries', () => {
  const s = buildSchedule(scenario({ duration_s: 2, arrival: { profile: 'constant', rate: 100 } }), [3]);
  assert.equal(s.at.length, 200);
  for (let i = 1; i < s.at.length; i++) assert.ok(Math.abs(s.at[i]! - s.at[i - 1]! - 10) < 1e-6, `gap ${s.at[i]! - s.at[i - 1]!} at ${i}`);
});

test('ramp, steps and bursts send what their rate integrates to; poisson is random but seeded', () => {
  const ramp = buildSchedule(scenario({ duration_s: 10, arrival: { profile: 'ramp', from: 0, to: 100 } }), [1]);
  assert.equal(ramp.at.length, 500);
  assert.ok(ramp.at.filter((t) => t >= 5000).length > 3 * ramp.at.filter((t) => t < 5000).length - 10, 'the second half is busier');
  const steps = buildSchedule(scenario({ duration_s: 3, arrival: { profile: 'steps', steps: [{ rate: 10, duration_s: 1 }, { rate: 100, duration_s: 2 }] } }), [1]);
  assert.equal(steps.at.filter((t) => t < 1000).length, 10);
  assert.equal(steps.at.length, 210);
  const bursts = buildSchedule(scenario({ duration_s: 10, arrival: { profile: 'bursts', rate: 10, burst_rate: 200, every_s: 5, burst_s: 0.5 } }), [1]);
  assert.equal(bursts.at.length, 2 * (200 * 0.5 + 10 * 4.5));
  assert.equal(bursts.at.filter((t) => t >= 5000 && t < 5500).length, 100);
  const p1 = buildSchedule(scenario({ duration_s: 20, arrival: { profile: 'poisson', rate: 100 } }), [1]);
  const p2 = buildSchedule(scenario({ duration_s: 20, arrival: { profile: 'poisson', rate: 100 } }), [1]);
  assert.deepEqual(p1.at, p2.at, 'the same seed, the same schedule');
  assert.ok(Math.abs(p1.at.length - 2000) < 200, `${p1.at.length} arrivals for an expected 2000`);
  const gaps = Array.from(p1.at.slice(1), (t, i) => t - p1.at[i]!);
  assert.ok(gaps.filter((g) => g > 20).length > 200, 'exponential gaps: many over twice the mean');
});

test('groups share the arrivals by weight; zipf keys are skewed, uniform ones are not', () => {
  const s = scenario({
    duration_s: 10, arrival: { profile: 'constant', rate: 1000 },
    groups: [{ ...GROUP, name: 'a', weight: 3, choice: 'zipf', zipf_s: 1.2 }, { ...GROUP, name: 'b', weight: 1 }],
  });
  const sch = buildSchedule(s, [100, 100]);
  const count = (g: number, k?: number): number => sch.group.filter((x, i) => x === g && (k === undefined || sch.key[i] === k)).length;
  assert.ok(Math.abs(count(0) / sch.at.length - 0.75) < 0.03, `group a share ${count(0) / sch.at.length}`);
  assert.ok(count(0, 0) > 10 * count(0, 50), `zipf: key 0 ${count(0, 0)}, key 50 ${count(0, 50)}`);
  assert.ok(count(1, 0) < 3 * (count(1) / 100), 'uniform: no favourite');
});

test('`sluice loadtest` with a bad scenario prints every error and exits 2 before sending anything', async () => {
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, stringify({ ...BASE, duration_s: 0, groups: [{ ...GROUP, plan: { rate: 'fast' } }] }));
  const r = await new Promise<{ code: number; stderr: string }>((resolve) => {
    execFile(process.execPath, [CLI, 'loadtest', file, '--quiet'], { timeout: 60_000 }, (err, _out, stderr) => resolve({ code: err === null ? 0 : Number(err.code), stderr }));
  });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /scenario: 2 error\(s\)\n {2}duration_s: must be >= 0.1, got 0\n {2}groups\[0\]\.plan\.rate: must be a number, got "fast"/);
  const bad = await new Promise<{ code: number; stderr: string }>((resolve) => {
    execFile(process.execPath, [CLI, 'loadtest', join(dir, 'none.yaml'), '--assert', 'p99<fast'], { timeout: 60_000 }, (err, _out, stderr) => resolve({ code: err === null ? 0 : Number(err.code), stderr }));
  });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /none\.yaml: ENOENT/);
});
