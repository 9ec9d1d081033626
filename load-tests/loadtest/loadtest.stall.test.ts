import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { sha256, testConfig } from '../../test/harness/config.js';
import { spawnDelayBackend } from '../../test/harness/delay-backend.js';
import { spawnGateway } from '../../test/harness/gateway.js';
import { runLoadtest } from './run.js';
import { parseScenario } from './scenario.js';
import { SUITE_GENERATOR } from './suite-generator.js';

// The measurement itself: an upstream frozen for one second (SIGSTOP, then SIGCONT) in
// the middle of a constant-rate run. An open-model generator keeps sending on schedule,
// and measuring from the intended send time, the requests it held back show up in p99
// at about one second. A closed-loop tool would have stopped sending and hidden it.

const RATE = 50;
const SECONDS = 6;
const STALL_MS = 1000;

test('a 1 s upstream stall in a constant-rate run shows in p99 at about 1 s', async (t) => {
  const backend = await spawnDelayBackend('stall', 0);
  const gw = await spawnGateway(testConfig({
    upstreams: [backend.url],
    plans: { roomy: { rate: 10_000, burst: 10_000 } },
    keys: [{ digest: sha256('stall-key'), customer: 'stall', plan: 'roomy' }],
    log: { access: false },
  }));
  t.after(async () => { await gw.stop(); backend.child.kill('SIGCONT'); await backend.kill(); });
  const dir = mkdtempSync(join(tmpdir(), 'sluice-loadtest-stall-'));
  writeFileSync(join(dir, 'keys.txt'), 'stall-key\n');
  const scenario = parseScenario(stringify({
    name: 'stall', target: gw.url, duration_s: SECONDS, arrival: { profile: 'constant', rate: RATE }, generator: SUITE_GENERATOR,
    groups: [{ name: 'steady', keys: { file: 'keys.txt' }, plan: { rate: 10_000, burst: 10_000 }, request: { path: '/v1/ping' } }],
  }), dir);

  // The generator starts within a second of the call (its threads load first): a stall
  // 2.5 s after the call falls in the middle of the 6 s run.
  const stall = setTimeout(() => {
    backend.child.kill('SIGSTOP');
    setTimeout(() => backend.child.kill('SIGCONT'), STALL_MS);
  }, 2500);
  t.after(() => clearTimeout(stall));
  const result = await runLoadtest({ scenario, targets: [{ url: gw.url, admin: undefined }], progress: null });
  const r = result.targets[0]!;
  t.diagnostic(`p50 ${r.latency.p50.toFixed(1)} ms, p90 ${r.latency.p90.toFixed(1)} ms, p99 ${r.latency.p99.toFixed(1)} ms, max ${r.latency.max.toFixed(1)} ms`);

  assert.equal(result.valid, true, result.invalidReasons.join('; '));
  assert.equal(r.sent, RATE * SECONDS);
  assert.equal(r.errorRate, 0, r.errorExamples.join(', '));
  // The stall is 1/6 of the run: the 1% slowest requests were all held most of that second.
  assert.ok(r.latency.p99 >= 0.85 * STALL_MS && r.latency.p99 <= 1.6 * STALL_MS, `p99 ${r.latency.p99} ms`);
  assert.ok(r.latency.p50 < 0.25 * STALL_MS, `p50 ${r.latency.p50} ms: most requests never met the stall`);
  // The stall is visible where it happened, in one or two 1-second buckets of the timeline.
  const slow = r.timeline.filter((p) => p.max >= 0.5 * STALL_MS);
  assert.ok(slow.length >= 1 && slow.length <= 3, `slow buckets: ${JSON.stringify(r.timeline.map((p) => p.max))}`);
  assert.ok(slow[0]!.t >= 1 && slow[0]!.t <= SECONDS - 2, `the stall at ${slow[0]!.t} s is in the middle`);
});
