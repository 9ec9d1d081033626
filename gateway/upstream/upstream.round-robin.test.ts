import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { startBackend } from '../../test/harness/backend.js';
import { sha256, testConfig } from '../../test/harness/config.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { assertGatewayHealthy } from '../../test/harness/proc.js';

describe('upstream: round-robin across targets', { timeout: 180_000 }, () => {
  let a: Awaited<ReturnType<typeof startBackend>>;
  let b: Awaited<ReturnType<typeof startBackend>>;
  let gw: GatewayProcess;
  const nameOf = (backend: typeof a): string => `backend-${(backend.server.address() as AddressInfo).port}`;

  before(async () => {
    a = await startBackend();
    b = await startBackend();
    gw = await spawnGateway(testConfig({
      upstreams: [a.url, b.url],
      // The default is p2c_ewma; this file is about the plain rotation.
      upstream: { balancer: 'round_robin' },
      keys: [{ digest: sha256('k-rr'), customer: 'acme', plan: 'test' }],
    }));
  });
  after(async () => { await gw?.stop(); await a?.close(); await b?.close(); });

  const whoAnswers = async (path: string): Promise<string> => {
    const res = await request(`${gw.url}${path}`, { headers: { 'x-api-key': 'k-rr' } });
    assert.equal(res.statusCode, 200);
    return (await res.body.json() as { backend: string }).backend;
  };

  it('alternates between the two backends, request by request', async () => {
    const seen: string[] = [];
    for (let i = 0; i < 8; i++) seen.push(await whoAnswers(`/v1/rr/${i}`));
    assert.deepEqual(new Set(seen), new Set([nameOf(a), nameOf(b)]), `answered by ${seen.join(', ')}`);
    for (let i = 1; i < seen.length; i++) assert.notEqual(seen[i], seen[i - 1], `two in a row from ${seen[i]}: ${seen.join(', ')}`);
  });

  it('splits concurrent requests evenly', async () => {
    const seen = await Promise.all(Array.from({ length: 20 }, (_, i) => whoAnswers(`/v1/rr/c${i}`)));
    const count = (name: string): number => seen.filter((s) => s === name).length;
    assert.equal(count(nameOf(a)), 10);
    assert.equal(count(nameOf(b)), 10);
    assertGatewayHealthy(gw);
  });
});
