import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { createKey } from '../../test/harness/admin.js';
import { startBackend } from '../../test/harness/backend.js';
import { sha256, testConfig } from '../../test/harness/config.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { pollUntil } from '../../test/harness/poll.js';
import { startRedis, type RedisProcess } from '../../test/harness/redis.js';

const PLANS = { test: { rate: 1000, burst: 1000 }, gold: { rate: 1000, burst: 1000 } };
// A route only the gold plan may use, in front of the catch-all.
const ROUTES = [
  { name: 'premium', prefix: '/premium', upstream: 'main', plans: ['gold'] },
  { name: 'all', prefix: '/', upstream: 'main' },
];

interface Echo { headers: Record<string, string> }

async function call(gw: GatewayProcess, headers: Record<string, string>, path = '/v1/echo') {
  const res = await request(`${gw.url}${path}`, { headers });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, json: text === '' ? undefined : JSON.parse(text) as any };
}

function assertUnauthorized(r: Awaited<ReturnType<typeof call>>, what: string): void {
  assert.equal(r.status, 401, what);
  assert.equal(r.json.error.code, 'unauthorized', what);
  assert.equal(r.json.error.request_id, r.headers['x-request-id'], what);
  assert.match(String(r.headers['www-authenticate']), /^Bearer realm=/, `${what}: 401 names the scheme`);
  assert.match(String(r.headers['content-type']), /^application\/json/, what);
}

describe('auth: API keys', () => {
  let backend: Awaited<ReturnType<typeof startBackend>>;
  let redis: RedisProcess;
  let rc: Redis;

  before(async () => {
    backend = await startBackend();
    redis = await startRedis();
    rc = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await rc.connect();
  });
  after(async () => {
    rc?.disconnect();
    await redis?.stop();
    await backend?.close();
  });

  describe('static keys from the config (memory store)', () => {
    let gw: GatewayProcess;
    before(async () => {
      gw = await spawnGateway(testConfig({
        upstreams: [backend.url],
        plans: PLANS,
        routes: ROUTES,
        keys: [
          { digest: sha256('ak-static-test'), customer: 'acme', plan: 'test' },
          { digest: sha256('ak-static-gold'), customer: 'bigco', plan: 'gold' },
        ],
      }));
    });
    after(async () => { await gw?.stop(); });

    it('accepts X-API-Key and passes the identity upstream', async () => {
      const r = await call(gw, { 'x-api-key': 'ak-static-test' });
      assert.equal(r.status, 200);
      assert.equal((r.json as Echo).headers['x-sluice-customer'], 'acme');
      assert.equal((r.json as Echo).headers['x-sluice-plan'], 'test');
    });

    it('accepts Authorization: Bearer with the scheme in any case', async () => {
      for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
        const r = await call(gw, { authorization: `${scheme} ak-static-gold` });
        assert.equal(r.status, 200, `scheme ${scheme}`);
        assert.equal((r.json as Echo).headers['x-sluice-customer'], 'bigco');
        assert.equal((r.json as Echo).headers.authorization, undefined, 'the credential stays at the edge');
      }
    });

    it('accepts HTTP Basic with the key as the user name and an empty password (curl -u KEY:)', async () => {
      for (const scheme of ['Basic', 'basic']) {
        const r = await call(gw, { authorization: `${scheme} ${Buffer.from('ak-static-gold:').toString('base64')}` });
        assert.equal(r.status, 200, `scheme ${scheme}`);
        assert.equal((r.json as Echo).headers['x-sluice-customer'], 'bigco');
        assert.equal((r.json as Echo).headers.authorization, undefined, 'the credential stays at the edge');
      }
    });

    it('refuses a missing, unknown or non-bearer credential with 401 JSON and WWW-Authenticate', async () => {
      assertUnauthorized(await call(gw, {}), 'no credential');
      assertUnauthorized(await call(gw, { 'x-api-key': 'ak-nobody' }), 'unknown X-API-Key');
      assertUnauthorized(await call(gw, { authorization: 'Bearer ak-nobody' }), 'unknown bearer key');
      assertUnauthorized(await call(gw, { authorization: `Basic ${Buffer.from('ak-static-test:secret').toString('base64')}` }), 'Basic with a password');
      assertUnauthorized(await call(gw, { authorization: `Basic ${Buffer.from(':ak-static-test').toString('base64')}` }), 'Basic with the key as the password');
      assertUnauthorized(await call(gw, { authorization: `Basic ${Buffer.from('ak-nobody:').toString('base64')}` }), 'unknown Basic key');
      assertUnauthorized(await call(gw, { authorization: 'Basic !!!' }), 'Basic that is not base64');
      assertUnauthorized(await call(gw, { authorization: 'Bearer' }), 'bearer without a token');
      // The digest itself is not a credential: whoever read the config must not get in.
      assertUnauthorized(await call(gw, { 'x-api-key': sha256('ak-static-test') }), 'the digest as a key');
    });

    it('answers 403 forbidden when the route is not in the caller\'s plan', async () => {
      const denied = await call(gw, { 'x-api-key': 'ak-static-test' }, '/premium/x');
      assert.equal(denied.status, 403);
      assert.equal(denied.json.error.code, 'forbidden');
      const allowed = await call(gw, { 'x-api-key': 'ak-static-gold' }, '/premium/x');
      assert.equal(allowed.status, 200);
    });

    it('accepts keys created through the admin API (memory store)', async () => {
      const { key, digest } = await createKey(gw.adminUrl, 'dyn-mem', 'gold');
      assert.equal(digest, sha256(key), 'without a pepper the stored digest is plain SHA-256');
      for (const headers of [{ 'x-api-key': key }, { authorization: `Bearer ${key}` }] as Record<string, string>[]) {
        const r = await call(gw, headers, '/premium/x');
        assert.equal(r.status, 200);
        assert.equal((r.json as Echo).headers['x-sluice-customer'], 'dyn-mem');
        assert.equal((r.json as Echo).headers['x-sluice-plan'], 'gold');
      }
    });
  });

  describe('with auth.pepper the digest is HMAC-SHA256', () => {
    const pepper = 'pepper-for-tests-0123456789abcdef';
    const hmac = (k: string): string => createHmac('sha256', pepper).update(k).digest('hex');
    let gw: GatewayProcess;
    before(async () => {
      gw = await spawnGateway(testConfig({
        upstreams: [backend.url],
        auth: { pepper },
        keys: [
          { digest: sha256('ak-pep-plain'), customer: 'plain', plan: 'test' },
          { digest: hmac('ak-pep-hmac'), customer: 'peppered', plan: 'test' },
        ],
      }));
    });
    after(async () => { await gw?.stop(); });

    it('refuses a key whose config digest is plain SHA-256 and accepts the HMAC one', async () => {
      assertUnauthorized(await call(gw, { 'x-api-key': 'ak-pep-plain' }), 'plain-SHA digest under a pepper');
      const r = await call(gw, { 'x-api-key': 'ak-pep-hmac' });
      assert.equal(r.status, 200);
      assert.equal((r.json as Echo).headers['x-sluice-customer'], 'peppered');
    });

    it('stores admin-created keys by their HMAC digest', async () => {
      const { key, digest } = await createKey(gw.adminUrl, 'pep-dyn', 'test');
      assert.equal(digest, hmac(key));
      assert.equal((await call(gw, { 'x-api-key': key })).status, 200);
    });
  });

  describe('Redis store', () => {
    const negativeTtlMs = 1500;
    let gw: GatewayProcess;
    before(async () => {
      gw = await spawnGateway(testConfig({
        upstreams: [backend.url],
        store: { kind: 'redis', url: redis.url },
        plans: PLANS,
        routes: ROUTES,
        auth: { negative_cache_ttl_ms: negativeTtlMs, cache_ttl_ms: 60_000 },
      }));
    });
    after(async () => { await gw?.stop(); });

    it('accepts keys created through the admin API, by either header', async () => {
      const { key, digest } = await createKey(gw.adminUrl, 'dyn-redis', 'gold');
      assert.equal(await rc.hget(`sluice:key:${digest}`, 'customer'), 'dyn-redis', 'the record lives in Redis under its digest');
      assert.equal(await rc.exists(`sluice:key:${key}`), 0);
      for (const headers of [{ 'x-api-key': key }, { authorization: `bearer ${key}` }] as Record<string, string>[]) {
        const r = await call(gw, headers, '/premium/x');
        assert.equal(r.status, 200);
        assert.equal((r.json as Echo).headers['x-sluice-customer'], 'dyn-redis');
      }
    });

    it('caches a refusal for negative_cache_ttl_ms, then sees a key created meanwhile', async (t) => {
      const key = `ak-late-${Date.now()}`;
      const sent = performance.now();
      assertUnauthorized(await call(gw, { 'x-api-key': key }), 'before the key exists');
      // Written behind the gateway's back: no invalidation is published, so only the
      // negative entry expiring can make the key visible.
      await rc.hset(`sluice:key:${sha256(key)}`, { customer: 'late', plan: 'test', label: '', created: Date.now() });
      const stillCached = await call(gw, { 'x-api-key': key });
      const cachedAt = performance.now() - sent;
      assert.ok(cachedAt < negativeTtlMs, `the re-check ran ${cachedAt.toFixed(0)} ms after the first, too late to test the cache`);
      assert.equal(stillCached.status, 401, 'the refusal is served from the negative cache');

      const pollFrom = performance.now() - sent;
      const seen = await pollUntil(async () => ((await call(gw, { 'x-api-key': key })).status === 200 ? true : undefined), negativeTtlMs + 5000, 25);
      const sinceFirst = pollFrom + seen.elapsedMs;
      t.diagnostic(`key became valid ${sinceFirst.toFixed(0)} ms after the first request (negative TTL ${negativeTtlMs} ms)`);
      assert.equal(seen.value, true, 'the key is accepted once the negative entry expires');
      // The entry was cached after `sent`, so it cannot expire before sent + TTL.
      assert.ok(sinceFirst >= negativeTtlMs - 5, `accepted after ${sinceFirst.toFixed(0)} ms, before the negative TTL ran out`);
    });

    it('answers 403 on a plan-restricted route for a dynamic key of another plan', async () => {
      const { key } = await createKey(gw.adminUrl, 'dyn-redis-test', 'test');
      const r = await call(gw, { 'x-api-key': key }, '/premium/x');
      assert.equal(r.status, 403);
      assert.equal(r.json.error.code, 'forbidden');
      assert.equal((await call(gw, { 'x-api-key': key })).status, 200);
    });
  });
});
