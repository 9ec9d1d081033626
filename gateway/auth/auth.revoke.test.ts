import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { admin, createKey } from '../../test/harness/admin.js';
import { startBackend } from '../../test/harness/backend.js';
import { testConfig } from '../../test/harness/config.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { pollUntil } from '../../test/harness/poll.js';
import { startRedis, type RedisProcess } from '../../test/harness/redis.js';

// Positive entries live a minute, so only the invalidation message can make a
// gateway forget a key within the test.
const CACHE_TTL_MS = 60_000;
const REVOKE_BUDGET_MS = 1000;

describe('auth: revocation across gateways sharing one Redis', () => {
  let backend: Awaited<ReturnType<typeof startBackend>>;
  let redis: RedisProcess;
  let rc: Redis;
  let a: GatewayProcess;
  let b: GatewayProcess;

  before(async () => {
    backend = await startBackend();
    redis = await startRedis();
    rc = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    const cfg = testConfig({
      upstreams: [backend.url],
      // Not under test: a generous deadline, so a busy host's slow answer is not a 503.
      store: { kind: 'redis', url: redis.url, timeout_ms: 2000 },
      auth: { cache_ttl_ms: CACHE_TTL_MS, negative_cache_ttl_ms: 60_000 },
    });
    [a, b] = await Promise.all([spawnGateway(cfg), spawnGateway(cfg)]);
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    rc?.disconnect();
    await redis?.stop();
    await backend?.close();
  });

  const status = async (gw: GatewayProcess, key: string): Promise<number> => {
    const res = await request(`${gw.url}/v1/echo`, { headers: { 'x-api-key': key } });
    await res.body.dump();
    return res.statusCode;
  };

  it('a key created on A works on A and B, and is then cached on both', async () => {
    const { key, digest } = await createKey(a.adminUrl, 'cache-probe', 'test');
    for (const gw of [a, b, a, b]) assert.equal(await status(gw, key), 200);
    // Deleting the record directly (no invalidation published) proves both gateways
    // answer from their caches; without this the revocation test could pass on a
    // gateway that never caches at all.
    assert.equal(await rc.del(`sluice:key:${digest}`), 1);
    for (const gw of [a, b]) assert.equal(await status(gw, key), 200, `gateway ${gw === a ? 'A' : 'B'} serves the key from its cache`);
  });

  it('revoking through A\'s admin API refuses the key on A and B within 1 s', async (t) => {
    const { key, digest } = await createKey(a.adminUrl, 'revoke-me', 'test');
    const other = await createKey(a.adminUrl, 'revoke-me', 'test');
    for (const gw of [a, b]) {
      assert.equal(await status(gw, key), 200);
      assert.equal(await status(gw, other.key), 200);
    }

    // The clock starts before the DELETE is sent: the budget covers the whole revocation.
    const t0 = performance.now();
    const revoked = await admin(a.adminUrl, 'DELETE', `/admin/keys/${digest}`);
    assert.equal(revoked.status, 204);
    // Both gateways are polled side by side; each probe reports when it first saw a 401.
    const [onA, onB] = await Promise.all([a, b].map((gw) =>
      pollUntil(async () => ((await status(gw, key)) === 401 ? performance.now() - t0 : undefined), REVOKE_BUDGET_MS * 5, 10)));
    t.diagnostic(`refused on A after ${onA!.value?.toFixed(1)} ms, on B after ${onB!.value?.toFixed(1)} ms (DELETE sent at 0)`);
    assert.notEqual(onA!.value, undefined, 'A never refused the revoked key');
    assert.notEqual(onB!.value, undefined, 'B never refused the revoked key');
    assert.ok(onA!.value! <= REVOKE_BUDGET_MS, `A took ${onA!.value!.toFixed(0)} ms`);
    assert.ok(onB!.value! <= REVOKE_BUDGET_MS, `B took ${onB!.value!.toFixed(0)} ms`);

    // Only the revoked key is forgotten: its sibling of the same customer still works.
    for (const gw of [a, b]) assert.equal(await status(gw, other.key), 200);
    // And it stays refused (no stale positive entry comes back).
    for (const gw of [a, b, a, b]) assert.equal(await status(gw, key), 401);
  });

  it('the gateway that served the DELETE refuses the key on the very next request', async () => {
    const { key, digest } = await createKey(a.adminUrl, 'revoke-local', 'test');
    assert.equal(await status(a, key), 200);
    assert.equal((await admin(a.adminUrl, 'DELETE', `/admin/keys/${digest}`)).status, 204);
    assert.equal(await status(a, key), 401, 'the revoking gateway must not depend on the pub/sub round trip');
  });
});
