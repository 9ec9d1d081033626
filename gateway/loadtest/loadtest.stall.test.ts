import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Agent, request } from 'undici';
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

  // 2.5 s into the 6 s schedule, the upstream stops for a second. stalledMs is the stall
  // as it happened: this process's timers can fire late on a busy host.
  let stoppedAt = 0;
  let stalledMs = 0;
  let stallAtMs = 0;
  let stall: NodeJS.Timeout | undefined;
  const startStall = (startAt: number): void => {
    stall = setTimeout(() => {
      backend.child.kill('SIGSTOP');
      stoppedAt = performance.now();
      stallAtMs = performance.timeOrigin + stoppedAt - startAt;
      setTimeout(() => { backend.child.kill('SIGCONT'); stalledMs = performance.now() - stoppedAt; }, STALL_MS);
    }, 2500);
  };
  t.after(() => clearTimeout(stall));
  // A gateway fresh from start-up answers its first requests slowly (JIT, connections):
  // warm it first, so the run measures the stall and not the cold start.
  const agent = new Agent({ connections: 4 });
  for (let i = 0; i < 200; i++) await (await request(`${gw.url}/v1/ping`, { dispatcher: agent, headers: { 'x-api-key': 'stall-key' } })).body.dump();
  await agent.close();

  // Live progress, as a log (not a terminal) gets it: a line every 5 s.
  const lines: string[] = [];
  const log = { isTTY: false, write: (l: string) => lines.push(l) } as unknown as NodeJS.WriteStream;
  const result = await runLoadtest({ scenario, targets: [{ url: gw.url, admin: undefined }], progress: log, onStart: startStall });
  const r = result.targets[0]!;
  t.diagnostic(`stall ${stalledMs.toFixed(0)} ms at ${stallAtMs.toFixed(0)} ms; p50 ${r.latency.p50.toFixed(1)} ms, p90 ${r.latency.p90.toFixed(1)} ms, p99 ${r.latency.p99.toFixed(1)} ms, max ${r.latency.max.toFixed(1)} ms; `
    + `per-second max ${r.timeline.map((p) => p.max.toFixed(0)).join(' ')}`);

  assert.equal(result.valid, true, result.invalidReasons.join('; '));
  assert.ok(lines.length >= 1, 'a progress line during the run');
  assert.match(lines[0]!, /^5 s: sent \d+\/s {2}answered \d+\/s {2}errors \d+ {2}p99 [\d.]+ ms {2}over-admitted 0\n$/);
  assert.equal(r.sent, RATE * SECONDS);
  assert.equal(r.errorRate, 0, r.errorExamples.join(', '));
  // The stall is 1/6 of the run: the 1% slowest requests were all held most of it. On a
  // busy host the gateway adds its own delay on top; the seconds before the stall say how much.
  assert.ok(stalledMs >= STALL_MS, 'the upstream was stopped for the whole second');
  const before = r.timeline.filter((p) => p.t + 1 <= stallAtMs / 1000 && p.t >= 1);
  const own = Math.max(0, ...before.map((p) => p.p99));
  assert.ok(r.latency.p99 >= 0.85 * stalledMs, `p99 ${r.latency.p99} ms hides a ${stalledMs} ms stall`);
  assert.ok(r.latency.p99 <= stalledMs + own + 600, `p99 ${r.latency.p99} ms for a ${stalledMs} ms stall and ${own} ms of the gateway's own p99`);
  // The stall is visible where it happened: the second it began in (or the next) holds a request held nearly all of it.
  const at = Math.floor(stallAtMs / 1000);
  const peak = r.timeline.filter((p) => p.t >= at && p.t <= at + 1).map((p) => p.max);
  assert.ok(Math.max(...peak) >= 0.85 * stalledMs, `per-second max around ${at} s: ${peak.join(', ')}`);
});
