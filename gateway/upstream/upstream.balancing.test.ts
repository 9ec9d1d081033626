import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sha256, testConfig } from '../../test/harness/config.js';
import { spawnDelayBackend, type DelayBackend } from '../../test/harness/delay-backend.js';
import { drive } from '../../test/harness/drive.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { assertGatewayHealthy } from '../../test/harness/proc.js';

// Three real backends, one far slower; the same bounded load through a gateway with the
// default balancer, one with round-robin and one with least_outstanding, counting who
// answered. The balancers' rules are unit-tested on an injected clock
// (upstream.balancers.test.ts); this shows them with real latencies.
//
// On a busy host every answer is late by scheduling noise, and p2c_ewma prices a target
// by peak latency x (requests outstanding + 1): a fast backend whose answer was held up
// 100 ms looks as dear as a 100 ms backend, the more so the more requests it has
// outstanding. So the slow backend is 30x slower than the fast ones (noise would have to
// reach the slow backend's whole delay to hide the difference), the load is light (6 in
// flight: the outstanding factor stays small), and the count starts after a warm-up that
// gives every target latency samples (before them, the default spreads requests blindly).
const FAST_MS = 10;
const SLOW_MS = 300;
const WARM_UP = 30;
const TOTAL = 300;
const CONCURRENCY = 6;
const KEY = 'k-balance';

describe('upstream: the default balancer (p2c over peak EWMA) routes around a slow backend', { timeout: 180_000 }, () => {
  let backends: DelayBackend[] = [];
  const gateways: GatewayProcess[] = [];

  before(async () => {
    backends = await Promise.all([
      spawnDelayBackend('fast-a', FAST_MS),
      spawnDelayBackend('fast-b', FAST_MS),
      spawnDelayBackend('slow', SLOW_MS),
    ]);
  });
  after(async () => {
    await Promise.all(gateways.map((g) => g.stop()));
    await Promise.all(backends.map((b) => b.kill('SIGKILL')));
  });

  /** The slow backend's share of `total` requests, counted after WARM_UP requests. */
  const shareOfSlow = async (balancer: string | undefined, total = TOTAL): Promise<number> => {
    const gw = await spawnGateway(testConfig({
      upstreams: backends.map((b) => b.url),
      ...(balancer === undefined ? {} : { upstream: { balancer } }),
      keys: [{ digest: sha256(KEY), customer: 'acme', plan: 'test' }],
      plans: { test: { rate: 100000, burst: 100000 } },
      log: { access: false },
    }));
    gateways.push(gw);
    assert.deepEqual((await drive(gw.url, WARM_UP, CONCURRENCY, { 'x-api-key': KEY })).errors, []);
    const r = await drive(gw.url, total, CONCURRENCY, { 'x-api-key': KEY });
    assert.deepEqual(r.errors, []);
    const shares = Object.fromEntries([...r.byBackend].map(([k, v]) => [k, v / total]));
    console.log(`${balancer ?? 'default (p2c_ewma)'}: ${JSON.stringify(r.byBackend.size === 0 ? {} : Object.fromEntries(r.byBackend))} shares ${JSON.stringify(shares)}`);
    assertGatewayHealthy(gw);
    return (r.byBackend.get('slow') ?? 0) / total;
  };

  it('the default sends the slow backend under 10% of requests', async () => {
    const share = await shareOfSlow(undefined);
    assert.ok(share < 0.10, `slow backend got ${(share * 100).toFixed(1)}%`);
  });

  it('round-robin sends it a third', async () => {
    // Each target in turn, whatever the timing: a few turns show it (and spare 300 ms answers).
    const share = await shareOfSlow('round_robin', 60);
    assert.ok(share > 0.30 && share < 0.37, `slow backend got ${(share * 100).toFixed(1)}%`);
  });

  it('least_outstanding also keeps it under a third (it holds requests longer)', async () => {
    const share = await shareOfSlow('least_outstanding');
    assert.ok(share < 0.2, `slow backend got ${(share * 100).toFixed(1)}%`);
  });
});
