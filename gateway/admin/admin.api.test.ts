import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { request } from 'undici';
import { stringify } from 'yaml';
import { parseConfig } from '../config/load.js';
import { Metrics } from '../observe/metrics.js';
import { RedisStore } from '../store/redis-store.js';
import type { Invalidation } from '../store/types.js';
import { MemoryAuditLog } from '../../common/admin/audit-log.js';
import { createAdminServer } from './admin-server.js';
import { admin, createKey } from '../../test/harness/admin.js';
import { startBackend } from '../../test/harness/backend.js';
import { ADMIN_TOKEN, sha256, testConfig } from '../../test/harness/config.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { startRedis, type RedisProcess } from '../../test/harness/redis.js';

const PLANS = {
  test: { rate: 1000, burst: 1000 },
  small: { rate: 1000, burst: 1000, max_body_bytes: 4096 },
};
const CONFIG_KEY = 'ak-admin-config-key';

async function use(gw: GatewayProcess, key: string): Promise<{ status: number; headers: Record<string, unknown>; json: any }> {
  const res = await request(`${gw.url}/v1/echo`, { headers: { 'x-api-key': key } });
  return { status: res.statusCode, headers: res.headers, json: await res.body.json() };
}

function assertBadRequest(r: Awaited<ReturnType<typeof admin>>, field: string, what: string): void {
  assert.equal(r.status, 400, `${what}: ${r.text}`);
  assert.match(String(r.headers['content-type']), /^application\/json/, what);
  assert.equal(r.body.error.code, 'bad_request', what);
  assert.ok(String(r.body.error.message).includes(field), `${what}: message ${JSON.stringify(r.body.error.message)} does not name ${field}`);
}

describe('admin API', () => {
  let backend: Awaited<ReturnType<typeof startBackend>>;
  let redis: RedisProcess;
  const gws: Record<'redis' | 'memory', GatewayProcess> = {} as never;

  before(async () => {
    backend = await startBackend();
    redis = await startRedis();
    const base = {
      upstreams: [backend.url],
      plans: PLANS,
      keys: [{ digest: sha256(CONFIG_KEY), customer: 'cfg-co', plan: 'test' }],
      // Long enough that only an invalidation, never expiry, can refresh an identity here.
      auth: { cache_ttl_ms: 60_000 },
      // The refusals below come from one address, far more than the flood throttle lets through (admin.auth-throttle.test.ts).
      admin: { auth_failures: { max: 1000 } },
    };
    [gws.redis, gws.memory] = await Promise.all([
      // A generous store timeout: what these tests prove is not about deadlines, and on a busy
      // host a lookup past the default 50 ms would answer 503 for a reason they do not judge.
      spawnGateway(testConfig({ ...base, store: { kind: 'redis', url: redis.url, timeout_ms: 2000 } })),
      spawnGateway(testConfig(base)),
    ]);
  });
  after(async () => {
    await Promise.all([gws.redis?.stop(), gws.memory?.stop()]);
    await redis?.stop();
    await backend?.close();
  });

  it('needs the bearer token on every /admin/ endpoint (401 JSON otherwise)', async () => {
    const gw = gws.redis;
    const attempts: [string, string | null][] = [
      ['no token', null], ['wrong token', 'not-the-token'], ['token digest as token', sha256(ADMIN_TOKEN)],
      ['token with a suffix', `${ADMIN_TOKEN}x`], ['empty', ''],
    ];
    for (const [what, token] of attempts) {
      for (const [method, path] of [['GET', '/admin/keys'], ['POST', '/admin/keys'], ['DELETE', `/admin/keys/${'0'.repeat(64)}`],
        ['PUT', '/admin/customers/x'], ['GET', '/admin/customers/x/usage'], ['GET', '/admin/no-such-endpoint']] as const) {
        const r = await admin(gw.adminUrl, method, path, method === 'POST' || method === 'PUT' ? { customer: 'x' } : undefined, token);
        assert.equal(r.status, 401, `${what} ${method} ${path}: ${r.text}`);
        assert.equal(r.body.error.code, 'unauthorized');
        assert.match(String(r.headers['content-type']), /^application\/json/);
      }
    }
    const basic = await request(`${gw.adminUrl}/admin/keys`, { headers: { authorization: `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}` } });
    assert.equal(basic.statusCode, 401, 'the token only counts as a bearer token');
    await basic.body.dump();
    // Nothing was created by the refused POSTs.
    assert.deepEqual((await admin(gw.adminUrl, 'GET', '/admin/keys?customer=x')).body.keys, []);
    // Health endpoints stay open for probes.
    assert.equal((await admin(gw.adminUrl, 'GET', '/healthz', undefined, null)).status, 200);
  });

  for (const kind of ['redis', 'memory'] as const) {
    describe(`keys and customers (${kind} store)`, () => {
      it('creates a key (shown once), lists it by customer as a digest, and revokes it', async () => {
        const gw = gws[kind];
        const customer = `keys-${kind}`;
        const created = await admin(gw.adminUrl, 'POST', '/admin/keys', { customer, plan: 'test', label: 'ci' });
        assert.equal(created.status, 201, created.text);
        const { key, digest } = created.body as { key: string; digest: string };
        assert.match(key, /^sluice_live_[0-9A-Za-z]{36}$/);
        assert.equal(digest, sha256(key));
        assert.equal((await use(gw, key)).status, 200);
        const second = await createKey(gw.adminUrl, customer, 'test');
        const elsewhere = await createKey(gw.adminUrl, `${customer}-other`, 'test');

        const listed = await admin(gw.adminUrl, 'GET', `/admin/keys?customer=${customer}`);
        assert.equal(listed.status, 200);
        assert.deepEqual(listed.body.keys.map((k: { digest: string }) => k.digest).sort(), [digest, second.digest].sort());
        const mine = listed.body.keys.find((k: { digest: string }) => k.digest === digest);
        assert.equal(mine.customer, customer);
        assert.equal(mine.plan, 'test');
        assert.equal(mine.label, 'ci');
        assert.equal(typeof mine.created_at, 'number');
        const all = await admin(gw.adminUrl, 'GET', '/admin/keys');
        assert.ok(all.body.keys.some((k: { digest: string }) => k.digest === elsewhere.digest), 'the unfiltered list has every customer');
        // The plain key is returned once, at creation, and never again.
        for (const body of [listed.text, all.text, (await admin(gw.adminUrl, 'GET', `/admin/customers/${customer}/usage`)).text]) {
          for (const plain of [key, second.key, elsewhere.key]) assert.ok(!body.includes(plain), 'a plain key appears in an admin answer');
          assert.ok(!/"key"\s*:/.test(body), 'a listing has a key field');
        }

        assert.equal((await admin(gw.adminUrl, 'DELETE', `/admin/keys/${digest}`)).status, 204);
        const refused = await use(gw, key);
        assert.equal(refused.status, 401, 'revoked key refused on the next request');
        assert.equal(refused.json.error.code, 'unauthorized');
        assert.equal((await use(gw, second.key)).status, 200, 'the customer\'s other key still works');
        const after = await admin(gw.adminUrl, 'GET', `/admin/keys?customer=${customer}`);
        assert.deepEqual(after.body.keys.map((k: { digest: string }) => k.digest), [second.digest]);
        const again = await admin(gw.adminUrl, 'DELETE', `/admin/keys/${digest}`);
        assert.equal(again.status, 404);
        assert.equal(again.body.error.code, 'not_found');
        const cfgKey = await admin(gw.adminUrl, 'DELETE', `/admin/keys/${sha256(CONFIG_KEY)}`);
        assert.equal(cfgKey.status, 409, 'a key from the config file cannot be revoked at runtime');
        assert.equal((await use(gw, CONFIG_KEY)).status, 200);
      });

      it('PUT /admin/customers/<id> changes plan and limits on the next request', async () => {
        const gw = gws[kind];
        const customer = `limits-${kind}`;
        const put = (body: object) => admin(gw.adminUrl, 'PUT', `/admin/customers/${customer}`, body);
        assert.equal((await put({ plan: 'test' })).status, 200);
        // No plan on the key: it follows whatever the customer record says.
        const { key } = await createKey(gw.adminUrl, customer);
        const first = await use(gw, key);
        assert.equal(first.status, 200, JSON.stringify(first.json));
        assert.equal(first.json.headers['x-sluice-plan'], 'test');
        assert.match(String(first.headers['ratelimit-policy']), /q=1000/);

        // The identity is cached (60 s TTL): only the customer invalidation can make the
        // very next request see a burst of 2. Rate 0.01/s keeps refill out of the picture.
        const changed = await put({ plan: 'small', overrides: { burst: 2, rate: 0.01 } });
        assert.equal(changed.status, 200, changed.text);
        assert.deepEqual(changed.body, { id: customer, plan: 'small', overrides: { burst: 2, rate: 0.01 } });
        const statuses: number[] = [];
        let lastPlan: string | undefined;
        for (let i = 0; i < 3; i++) {
          const r = await use(gw, key);
          statuses.push(r.status);
          if (r.status === 200) lastPlan = r.json.headers['x-sluice-plan'];
          else assert.equal(r.json.error.code, 'rate_limited');
        }
        assert.deepEqual(statuses, [200, 200, 429]);
        assert.equal(lastPlan, 'small', 'the plan change applies too');

        const shown = await admin(gw.adminUrl, 'GET', `/admin/customers/${customer}`);
        assert.equal(shown.status, 200);
        assert.deepEqual(shown.body, { id: customer, plan: 'small', overrides: { burst: 2, rate: 0.01 } });

        // Lifting the override takes effect just as fast.
        assert.equal((await put({ plan: 'test', overrides: {} })).status, 200);
        assert.equal((await use(gw, key)).status, 200);
      });

      it('GET /admin/customers/<id>/usage reports day_used after some requests', async () => {
        const gw = gws[kind];
        const customer = `usage-${kind}`;
        const before = await admin(gw.adminUrl, 'GET', `/admin/customers/${customer}/usage`);
        assert.equal(before.status, 200);
        assert.equal(before.body.day_used, 0);
        const { key } = await createKey(gw.adminUrl, customer, 'test');
        for (let i = 0; i < 5; i++) assert.equal((await use(gw, key)).status, 200);
        const u = await admin(gw.adminUrl, 'GET', `/admin/customers/${customer}/usage`);
        assert.equal(u.status, 200);
        assert.equal(u.body.customer, customer);
        assert.equal(u.body.day_used, 5);
        assert.equal(u.body.month_used, 5);
        assert.equal(u.body.inflight, 0);
      });
    });
  }

  it('customer updates racing credential lookups never turn them into errors', async () => {
    const gw = gws.redis;
    // Keys of a customer whose record keeps changing; each request below is a cache miss
    // (a fresh key, or a key whose entry the last update dropped) so its store lookup is
    // in flight while the updates clear the cache.
    const customer = 'race-co';
    const keys = await Promise.all(Array.from({ length: 20 }, () => createKey(gw.adminUrl, customer, 'test')));
    const statuses = new Map<number, number>();
    const count = (status: number): void => { statuses.set(status, (statuses.get(status) ?? 0) + 1); };
    // Round by round, so each update gets its own window of lookups in flight.
    for (let round = 0; round < 15; round++) {
      await Promise.all([
        admin(gw.adminUrl, 'PUT', `/admin/customers/${customer}`, { plan: 'test', overrides: { rate: 1000 + round } }),
        ...keys.map(({ key }) => use(gw, key).then((r) => count(r.status))),
        ...Array.from({ length: 10 }, (_, i) => use(gw, `ak-race-unknown-${round}-${i}`).then((r) => count(r.status))),
      ]);
    }
    assert.deepEqual(Object.fromEntries(statuses), { 200: 15 * 20, 401: 15 * 10 });
  });

  it('applies an invalidation in its own process before answering, not via the pub/sub echo', async () => {
    // In-process, against the real Redis: the admin server alone, with no subscriber, so
    // the only way this process can learn of the change is the direct call. A gateway
    // relying on its own echo could answer the DELETE and then still accept the key.
    const cfg = parseConfig(stringify(testConfig({ upstreams: ['http://127.0.0.1:1'], plans: PLANS, store: { kind: 'redis', url: redis.url } })), {});
    const store = new RedisStore(cfg.store);
    await store.ready(2000);
    const seen: Invalidation[] = [];
    const server = createAdminServer({
      cfg, store, metrics: new Metrics(50), log: pino({ level: 'silent' }), audit: new MemoryAuditLog(60_000), webhookKeys: undefined,
      storeReady: () => store.ping(),
      invalidate: (msg) => seen.push(msg),
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const { digest } = await createKey(url, 'direct-co', 'test');
      assert.equal((await admin(url, 'DELETE', `/admin/keys/${digest}`)).status, 204);
      assert.deepEqual(seen, [{ kind: 'key', digest }], 'invalidated before the 204 went out');
      assert.equal((await admin(url, 'PUT', '/admin/customers/direct-co', { plan: 'test' })).status, 200);
      assert.deepEqual(seen.at(-1), { kind: 'customer', id: 'direct-co' });
      // Refused writes invalidate nothing.
      assert.equal((await admin(url, 'PUT', '/admin/customers/direct-co', { plan: 'nope' })).status, 400);
      assert.equal((await admin(url, 'DELETE', `/admin/keys/${digest}`)).status, 404);
      assert.equal(seen.length, 2);
    } finally {
      await new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); });
      await store.close();
    }
  });

  it('answers bad input with 400 JSON naming the field', async () => {
    const gw = gws.redis;
    const a = (method: 'POST' | 'PUT' | 'DELETE' | 'GET', path: string, body?: unknown) => admin(gw.adminUrl, method, path, body);
    assertBadRequest(await a('POST', '/admin/keys', {}), 'customer', 'no customer');
    assertBadRequest(await a('POST', '/admin/keys', { customer: 'has space' }), 'customer', 'customer with a space');
    assertBadRequest(await a('POST', '/admin/keys', { customer: 42 }), 'customer', 'customer not a string');
    assertBadRequest(await a('POST', '/admin/keys', { customer: 'c', plan: 'platinum' }), 'plan', 'unknown plan');
    assertBadRequest(await a('POST', '/admin/keys', { customer: 'no-plan-anywhere' }), 'plan', 'no plan on the key or its customer');
    assert.equal((await a('PUT', '/admin/customers/plan-on-customer', { plan: 'test' })).status, 200);
    assert.equal((await a('POST', '/admin/keys', { customer: 'plan-on-customer' })).status, 201, 'the customer\'s plan is enough');
    assertBadRequest(await a('POST', '/admin/keys', { customer: 'c', plan: 5 }), 'plan', 'plan not a string');
    assertBadRequest(await a('POST', '/admin/keys', { customer: 'c', label: ['x'] }), 'label', 'label not a string');
    assertBadRequest(await a('POST', '/admin/keys', { customer: 'c', plna: 'test' }), 'plna', 'misspelt field');
    assertBadRequest(await a('POST', '/admin/keys', '{"customer":'), 'JSON', 'not JSON');
    assertBadRequest(await a('POST', '/admin/keys', '[]'), 'JSON object', 'JSON but not an object');
    assertBadRequest(await a('DELETE', '/admin/keys/not-a-digest'), 'digest', 'bad digest');
    assertBadRequest(await a('DELETE', `/admin/keys/${'A'.repeat(64)}`), 'digest', 'upper-case digest');
    assertBadRequest(await a('PUT', '/admin/customers/c', { plan: 'platinum' }), 'plan', 'unknown plan on a customer');
    assertBadRequest(await a('PUT', '/admin/customers/c', { overrides: [] }), 'overrides', 'overrides a list');
    assertBadRequest(await a('PUT', '/admin/customers/c', { overrides: { brust: 2 } }), 'overrides.brust', 'unknown override');
    assertBadRequest(await a('PUT', '/admin/customers/c', { overrides: { burst: -1 } }), 'overrides.burst', 'negative override');
    assertBadRequest(await a('PUT', '/admin/customers/c', { overrides: { rate: '5' } }), 'overrides.rate', 'override as a string');
    assertBadRequest(await a('PUT', '/admin/customers/c', { overrides: { quota_day: 1.5 } }), 'overrides.quota_day', 'fractional quota');
    assertBadRequest(await a('PUT', '/admin/customers/c', { overrides: { rate: 5, burst: 0.5 } }), 'overrides.burst', 'burst below one token');
    assertBadRequest(await a('PUT', '/admin/customers/c', { plan: 'test', overides: { burst: 1 } }), 'overides', 'misspelt customer field');
    assertBadRequest(await a('PUT', '/admin/customers/bad%20id', { plan: 'test' }), 'customer', 'customer id with a space');
    assertBadRequest(await a('GET', '/admin/customers/%E0%A4%A/usage'), 'percent', 'broken percent-encoding');
    // None of the refused writes left anything behind.
    assert.equal((await a('GET', '/admin/customers/c')).status, 404);
    assert.deepEqual((await a('GET', '/admin/keys?customer=c')).body.keys, []);
  });
});
