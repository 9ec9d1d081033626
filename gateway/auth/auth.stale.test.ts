import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { admin, createKey } from '../../test/harness/admin.js';
import { startBackend } from '../../test/harness/backend.js';
import { sha256, testConfig } from '../../test/harness/config.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { pollUntil } from '../../test/harness/poll.js';
import { redisCli, startRedis, type RedisProcess } from '../../test/harness/redis.js';

// auth.stale_if_error_ms: when the store cannot be asked, a key identity whose cache
// entry went stale is still served (and the limits' failure policy decides), instead of
// every customer getting 503 for as long as a Redis failover lasts.

const CACHE_TTL_MS = 300;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe('auth: stale identities while the store is unreachable (stale_if_error_ms)', () => {
  let backend: Awaited<ReturnType<typeof startBackend>>;
  let redis: RedisProcess;
  /** stale_if_error_ms: 60 s */
  let gw: GatewayProcess;
  /** stale_if_error_ms: 0 — the fallback turned off */
  let strict: GatewayProcess;
  /** A cache TTL of a minute: only an invalidation can make it forget a key. */
  let longTtl: GatewayProcess;

  before(async () => {
    backend = await startBackend();
    redis = await startRedis();
    const cfg = (staleMs: number, ttlMs = CACHE_TTL_MS) => testConfig({
      upstreams: [backend.url],
      // Long enough that a healthy Redis on a busy host answers every lookup in time (what is
      // judged is what is served once it cannot answer, not how soon that is known).
      store: { kind: 'redis', url: redis.url, timeout_ms: 1000, failure_policy: 'open' },
      keys: [{ digest: sha256('k-static'), customer: 'c-static', plan: 'test' }],
      auth: { cache_ttl_ms: ttlMs, negative_cache_ttl_ms: ttlMs, stale_if_error_ms: staleMs },
      log: { access: false },
    });
    [gw, strict, longTtl] = await Promise.all([spawnGateway(cfg(60_000)), spawnGateway(cfg(0)), spawnGateway(cfg(60_000, 60_000))]);
  });
  after(async () => {
    redis?.signal('SIGCONT');
    await Promise.all([gw?.stop(), strict?.stop(), longTtl?.stop()]);
    await redis?.stop();
    await backend?.close();
  });

  const call = async (g: GatewayProcess, key: string): Promise<{ status: number; code?: string }> => {
    const res = await request(`${g.url}/v1/echo`, { headers: { 'x-api-key': key } });
    const text = await res.body.text();
    return { status: res.statusCode, code: res.statusCode === 200 ? undefined : JSON.parse(text).error?.code };
  };

  it('a reconnect of the invalidation channel makes every cached key be looked up again', async () => {
    const { key, digest } = await createKey(longTtl.adminUrl, 'c-reconnect', 'test');
    assert.equal((await call(longTtl, key)).status, 200);
    // Remove the record behind the gateway's back (no invalidation is published), then cut
    // the subscriber's connection: messages may have been missed, so the cache must not be trusted.
    assert.equal((await redisCli(redis.port, 'DEL', `sluice:key:${digest}`)).trim(), '1');
    assert.equal((await call(longTtl, key)).status, 200, 'served from the cache before the reconnect');
    await redisCli(redis.port, 'CLIENT', 'KILL', 'TYPE', 'pubsub');
    const refused = await pollUntil(async () => ((await call(longTtl, key)).status === 401 ? true : undefined), 5000);
    assert.equal(refused.value, true, 'after the subscriber reconnected the deleted key was still served');
  });

  it('with Redis paused, stale key identities are served and fail open; unknown and revoked keys are not', async () => {
    const dynamic = await createKey(gw.adminUrl, 'c-dyn', 'test');
    const revoked = await createKey(gw.adminUrl, 'c-rev', 'test');
    // Warm the caches. The store deadline is 50 ms, which a busy host can miss (a 503 then,
    // as designed): the warm-up is not what this test is about, so it tries again.
    for (const g of [gw, strict]) {
      for (const k of ['k-static', dynamic.key, revoked.key]) {
        const warmed = await pollUntil(async () => ((await call(g, k)).status === 200 ? true : undefined), 5000, 20);
        assert.equal(warmed.value, true, `${k} accepted while Redis answers`);
      }
    }
    assert.equal((await admin(gw.adminUrl, 'DELETE', `/admin/keys/${revoked.digest}`)).status, 204);
    assert.equal((await call(gw, revoked.key)).status, 401);

    redis.signal('SIGSTOP');
    try {
      // Let every cache entry go stale: the TTL is the only event there is to wait for.
      await sleep(CACHE_TTL_MS * 2);
      for (const k of ['k-static', dynamic.key]) {
        assert.deepEqual(await call(gw, k), { status: 200, code: undefined }, 'a stale identity is served; the limits fail open');
        assert.deepEqual(await call(gw, k), { status: 200, code: undefined }, 'and again (now cached for a short retry interval)');
        assert.deepEqual(await call(strict, k), { status: 503, code: 'unavailable' }, 'stale_if_error_ms: 0 turns the fallback off');
      }
      assert.deepEqual(await call(gw, 'k-never-seen'), { status: 503, code: 'unavailable' }, 'a key never looked up has nothing stale to serve');
      assert.notEqual((await call(gw, revoked.key)).status, 200, 'a revoked key is deleted from the cache, never resurrected');
    } finally {
      redis.signal('SIGCONT');
    }
    // Back to the store: the revoked key is refused by it, the others are admitted.
    const back = await pollUntil(async () => ((await call(gw, revoked.key)).status === 401 ? true : undefined), 5000);
    assert.equal(back.value, true);
    assert.equal((await call(gw, dynamic.key)).status, 200);
  });
});
