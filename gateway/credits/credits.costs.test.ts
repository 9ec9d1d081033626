import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { admin } from '../../test/harness/admin.js';
import { sha256, testConfig } from '../../test/harness/config.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { startRedis, type RedisProcess } from '../../test/harness/redis.js';
import { waitUntil } from '../../test/harness/test-backend.js';
import { startWorkBackend, type WorkBackend } from '../../test/harness/work-backend.js';

// A plan priced in units, end to end through one gateway, on the memory store and on a
// real Redis: the estimate before admission, the RateLimit headers in units, the
// settlement from the backend's report, refunds of failed responses, and a plan
// without costs behaving exactly as before costs existed.

const FROZEN = 0.001;
const COSTS = { base: 1, routes: { detect: 3 }, format_auto: 4, detection: 6, per_megapixel: 2, bytes_per_megapixel: 100_000 };
const PLANS = {
  plain: { rate: FROZEN, burst: 1000, quota_day: 1000 },
  priced: { rate: FROZEN, burst: 1000, quota_day: 1000, costs: COSTS },
  tight: { rate: FROZEN, burst: 5, quota_day: 1000, costs: { base: 1, format_auto: 10 } },
  small: { rate: FROZEN, burst: 1000, quota_day: 20, costs: { base: 1, format_auto: 4, per_megapixel: 1 } },
};
const CUSTOMERS = ['plain-a', 'priced-a', 'priced-b', 'priced-c', 'tight-a', 'small-a', 'over-a'];
const planOf = (c: string): string => c.replace(/-.*/, '').replace('over', 'plain');

interface Reply { readonly status: number; readonly headers: Record<string, string | string[] | undefined>; readonly body: string }

function suite(name: string, store: () => Promise<{ cfg: object; stop(): Promise<void> }>): void {
  describe(`costs in units (${name} store)`, () => {
    let backend: WorkBackend;
    let gw: GatewayProcess;
    let stopStore: () => Promise<void>;

    before(async () => {
      backend = await startWorkBackend();
      const s = await store();
      stopStore = s.stop;
      gw = await spawnGateway(testConfig({
        upstreams: [backend.url],
        store: s.cfg as never,
        plans: PLANS,
        keys: CUSTOMERS.map((c) => ({ digest: sha256(`key-${c}`), customer: c, plan: planOf(c) })),
        // The overrides give a customer on a plan without costs prices of its own.
        customers: { 'over-a': { overrides: { costs: { base: 2, format_auto: 3 } } } },
        routes: [{ name: 'detect', prefix: '/v1/detect', upstream: 'main' }, { name: 'api', prefix: '/', upstream: 'main' }],
        // A backend slower than this is the gateway's 504.
        upstream: { headers_timeout_ms: 1000 },
        log: { access: false },
      }));
    });
    after(async () => {
      await gw?.stop();
      await backend?.close();
      await stopStore?.();
    });

    const post = async (customer: string, path: string, headers: Record<string, string> = {}, body = ''): Promise<Reply> => {
      const res = await request(`${gw.url}${path}`, { method: 'POST', headers: { 'x-api-key': `key-${customer}`, ...headers }, body });
      return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
    };
    /** The day quota used, as the store counts it (the admin API: the read itself costs nothing). */
    const dayUsed = async (customer: string): Promise<number> => (await admin(gw.adminUrl, 'GET', `/admin/customers/${customer}/usage`)).body.day_used as number;
    const settlesTo = (customer: string, units: number): Promise<void> => waitUntil(async () => (await dayUsed(customer)) === units, 5000, `${customer} at ${units} units`);

    it('without costs a request is one unit, whatever it asks for or the backend reports', async () => {
      const r = await post('plain-a', '/v1/images', { 'x-options': '{"format":"auto"}', 'x-test-work': 'pixels=40000000, encodes=3, auto' }, 'x'.repeat(500_000));
      assert.equal(r.status, 200);
      assert.equal(r.headers['ratelimit-policy'], '"plain";q=1000;w=1000000, "plain-day";q=1000;w=86400');
      assert.match(String(r.headers.ratelimit), /^"plain";r=999;t=\d+, "plain-day";r=999;t=\d+$/);
      assert.equal(r.headers['x-sluice-work'], undefined, 'the work report is the gateway\'s, not the client\'s');
      await settlesTo('plain-a', 1);
      // A 5xx gives its unit back (billing.refund_statuses), a 4xx does not.
      assert.equal((await post('plain-a', '/v1/images', { 'x-test-status': '502' })).status, 502);
      await settlesTo('plain-a', 1);
      assert.equal((await post('plain-a', '/v1/images', { 'x-test-status': '400' })).status, 400);
      await settlesTo('plain-a', 2);
    });

    it('the estimate prices what the edge sees, and the RateLimit headers count it', async () => {
      const r = await post('priced-a', '/v1/images', { 'x-options': '{"format":"auto","crop":{"mode":"face","aspect":"1:1"}}' }, 'x'.repeat(150_000));
      assert.equal(r.status, 200);
      // 1 + 4 (auto) + 6 (face) + 2 x 2 started megapixels (150 000 bytes at 100 000 a megapixel) = 15.
      assert.match(String(r.headers.ratelimit), /^"priced";r=985;t=\d+, "priced-day";r=985;t=\d+$/);
      // No work report: the estimate stands.
      await settlesTo('priced-a', 15);
      const d = await post('priced-a', '/v1/detect');
      assert.match(String(d.headers.ratelimit), /"priced-day";r=976;/, 'detect: its route base 3 + detection 6');
      await settlesTo('priced-a', 24);
    });

    it('settles to what the backend reports it did: more, or back', async () => {
      // Estimated 1 (nothing visible); the backend decoded 12.5 MP and searched formats: 1 + 4 + 2 x 13 = 31.
      await post('priced-b', '/v1/images', { 'x-test-work': 'pixels=12500000, encodes=3, auto' });
      await settlesTo('priced-b', 31);
      // Estimated 1 + 4 + 2 x 5 = 15; the backend found a still 1 MP image and encoded once: 1 + 2 = 3.
      await post('priced-b', '/v1/images', { 'x-options': '{"format":"auto"}', 'x-test-work': 'pixels=1000000, encodes=1' }, 'x'.repeat(500_000));
      await settlesTo('priced-b', 34);
    });

    it('a response failed by a backend or by the gateway refunds its quota units; a 4xx does not', async () => {
      await post('priced-c', '/v1/images', { 'x-options': '{"format":"auto"}', 'x-test-status': '500', 'x-test-work': 'pixels=1000000, encodes=1' });
      await post('priced-c', '/v1/images', { 'x-options': '{"format":"auto"}', 'x-test-status': '503' });
      await settlesTo('priced-c', 0);
      // The gateway's own 504: the backend is too slow for the upstream's headers timeout.
      const slow = await post('priced-c', '/v1/images', { 'x-test-delay-ms': '3000' });
      assert.equal(slow.status, 504);
      await settlesTo('priced-c', 0);
      await post('priced-c', '/v1/images', { 'x-options': '{"format":"auto"}', 'x-test-status': '422', 'x-test-work': 'pixels=1000000, encodes=1' });
      await settlesTo('priced-c', 3);
    });

    it('a refused request names its price in units and takes nothing; a cheaper one still passes', async () => {
      // 1 + 16 megapixels reported: 17 of the day's 20 units.
      await post('small-a', '/v1/images', { 'x-test-work': 'pixels=16000000, encodes=1' });
      await settlesTo('small-a', 17);
      const refused = await post('small-a', '/v1/images', { 'x-options': '{"format":"auto"}' });
      assert.equal(refused.status, 429);
      const e = JSON.parse(refused.body) as { error: { code: string; message: string } };
      assert.equal(e.error.code, 'quota_exceeded');
      assert.match(e.error.message, /^daily quota of 20 units used up \(this request costs 5\); it resets at 00:00 UTC$/);
      assert.equal(await dayUsed('small-a'), 17, 'a refusal takes nothing');
      assert.equal((await post('small-a', '/v1/images')).status, 200, 'one unit still fits');
      await settlesTo('small-a', 18);
    });

    it('a request dearer than the burst is admitted at the burst and settled at its price', async () => {
      const r = await post('tight-a', '/v1/images', { 'x-options': '{"format":"auto"}' });
      assert.equal(r.status, 200);
      assert.match(String(r.headers.ratelimit), /^"tight";r=0;t=\d+, "tight-day";r=995;/);
      // 1 + 10 = 11 units, 5 of them at admission: the other 6 come after, in debt.
      await settlesTo('tight-a', 11);
      const next = await post('tight-a', '/v1/images');
      assert.equal(next.status, 429);
      assert.match(JSON.parse(next.body).error.message as string, /units\/s with burst 5 exceeded for plan tight: this request costs 1 units/);
    });

    it("a customer's overrides price a plan that has no costs", async () => {
      await post('over-a', '/v1/images', { 'x-options': '{"format":"auto"}' });
      await settlesTo('over-a', 5);
    });

    it('the daily usage reaches the store within billing.usage.flush_ms (1 s), without being asked', async () => {
      const today = new Date().toISOString().slice(0, 10);
      await waitUntil(async () => {
        const r = await admin(gw.adminUrl, 'GET', `/admin/usage?customer=over-a&from=${today}&to=${today}`);
        return r.body.days?.[0]?.units_charged === 5;
      }, 5000, "over-a's usage in the store");
    });
  });
}

suite('memory', async () => ({ cfg: { kind: 'memory' }, stop: async () => {} }));

let redis: RedisProcess | undefined;
suite('redis', async () => {
  redis = await startRedis();
  // Token leases are off: this file is about one request's units, not batches.
  return { cfg: { kind: 'redis', url: redis.url, timeout_ms: 2000, lease: { enabled: false } }, stop: () => redis!.stop() };
});
