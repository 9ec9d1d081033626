import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sha256, testConfig } from '../../test/harness/config.js';
import { spawnDelayBackend, type DelayBackend } from '../../test/harness/delay-backend.js';
import { drive } from '../../test/harness/drive.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { assertGatewayHealthy } from '../../test/harness/proc.js';

// Three real backends, one ten times slower; the same bounded load through a gateway with
// the default balancer and through one with round-robin, counting who answered.
const TOTAL = 600;
const CONCURRENCY = 12;
const KEY = 'k-balance';

describe('upstream: the default balancer (p2c over peak EWMA) routes around a slow backend', { timeout: 50_000 }, () => {
  let backends: DelayBackend[] = [];
  const gateways: GatewayProcess[] = [];

  before(async () => {
    backends = await Promise.all([
      spawnDelayBackend('fast-a', 10),
      spawnDelayBackend('fast-b', 10),
      spawnDelayBackend('slow', 100),
    ]);
  });
  after(async () => {
    await Promise.all(gateways.map((g) => g.stop()));
    await Promise.all(backends.map((b) => b.kill('SIGKILL')));
  });

  const shareOfSlow = async (balancer: string | undefined): Promise<number> => {
    const gw = await spawnGateway(testConfig({
      upstreams: backends.map((b) => b.url),
      ...(balancer === undefined ? {} : { upstream: { balancer } }),
      keys: [{ digest: sha256(KEY), customer: 'acme', plan: 'test' }],
      plans: { test: { rate: 100000, burst: 100000 } },
      log: { access: false },
    }));
    gateways.push(gw);
    const r = await drive(gw.url, TOTAL, CONCURRENCY, { 'x-api-key': KEY });
    assert.deepEqual(r.errors, []);
    const shares = Object.fromEntries([...r.byBackend].map(([k, v]) => [k, v / TOTAL]));
    console.log(`${balancer ?? 'default (p2c_ewma)'}: ${JSON.stringify(r.byBackend.size === 0 ? {} : Object.fromEntries(r.byBackend))} shares ${JSON.stringify(shares)}`);
    assertGatewayHealthy(gw);
    return (r.byBackend.get('slow') ?? 0) / TOTAL;
  };

  it('the default sends the slow backend under 10% of requests', async () => {
    const share = await shareOfSlow(undefined);
    assert.ok(share < 0.10, `slow backend got ${(share * 100).toFixed(1)}%`);
  });

  it('round-robin sends it a third', async () => {
    const share = await shareOfSlow('round_robin');
    assert.ok(share > 0.30 && share < 0.37, `slow backend got ${(share * 100).toFixed(1)}%`);
  });

  it('least_outstanding also keeps it under a third (it holds requests longer)', async () => {
    const share = await shareOfSlow('least_outstanding');
    assert.ok(share < 0.2, `slow backend got ${(share * 100).toFixed(1)}%`);
  });
});
