import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { startBackend } from '../../test/harness/backend.js';
import { sha256, testConfig } from '../../test/harness/config.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { startRedis, type RedisProcess } from '../../test/harness/redis.js';
import type { AccountBody } from './account-stage.js';

// GET /v1/account is answered by the gateway from the store the limits count in: the
// same answers on the memory store and on a real Redis.

const PLANS = {
  metered: { rate: 1000, burst: 500, quota_day: 100, quota_month: 1000, max_inflight: 4, max_body_bytes: 1048576 },
  open: { rate: 1000, burst: 1000 },
};
const KEYS = [
  { digest: sha256('acct-metered'), customer: 'acme', plan: 'metered' },
  { digest: sha256('acct-open'), customer: 'globex', plan: 'open' },
];

async function account(gw: GatewayProcess, headers: Record<string, string>, method: 'GET' | 'POST' = 'GET') {
  const res = await request(`${gw.url}/v1/account`, { method, headers });
  return { status: res.statusCode, headers: res.headers, json: await res.body.json() as AccountBody & { error?: { code: string } } };
}

function suite(name: string, store: () => object): void {
  describe(`GET /v1/account (${name} store)`, () => {
    let gw: GatewayProcess;
    let backend: Awaited<ReturnType<typeof startBackend>>;
    let upstreamHits = 0;
    before(async () => {
      backend = await startBackend();
      backend.server.on('request', () => { upstreamHits++; });
      gw = await spawnGateway(testConfig({ upstreams: [backend.url], store: store() as never, plans: PLANS, keys: KEYS }));
    });
    after(async () => {
      await gw?.stop();
      await backend?.close();
    });

    it('answers the plan, its limits and the usage, counting the calls the limits counted', async () => {
      for (let i = 0; i < 3; i++) {
        const res = await request(`${gw.url}/v1/echo`, { headers: { 'x-api-key': 'acct-metered' } });
        assert.equal(res.statusCode, 200);
        await res.body.dump();
      }
      const hitsBefore = upstreamHits;
      const r = await account(gw, { 'x-api-key': 'acct-metered' });
      assert.equal(r.status, 200);
      assert.equal(upstreamHits, hitsBefore, 'the gateway answered it; no backend saw it');
      assert.match(String(r.headers['ratelimit-policy']), /^"metered";q=500;w=/);
      assert.equal(r.json.customer, 'acme');
      assert.equal(r.json.plan, 'metered');
      assert.deepEqual(r.json.limits, { scope: 'customer', rate: 1000, burst: 500, quota_day: 100, quota_month: 1000, max_inflight: 4, max_body_bytes: 1048576 });
      // Three calls, then this one: limited and counted like any other.
      assert.equal(r.json.usage.day.used, 4);
      assert.equal(r.json.usage.day.limit, 100);
      assert.equal(r.json.usage.day.remaining, 96);
      assert.equal(r.json.usage.month.used, 4);
      assert.equal(r.json.usage.month.remaining, 996);
      assert.equal(r.json.usage.inflight, 1, 'this very request holds a lease');
      assert.ok(r.json.usage.burst_remaining !== null && r.json.usage.burst_remaining >= 495 && r.json.usage.burst_remaining < 500);
      const now = new Date();
      assert.equal(r.json.usage.day.resets_at, new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1)).toISOString());
      assert.equal(r.json.usage.month.resets_at, new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)).toISOString());
    });

    it('works with HTTP Basic (key as the user name), and shows null for the limits a plan does not set', async () => {
      const r = await account(gw, { authorization: `Basic ${Buffer.from('acct-open:').toString('base64')}` });
      assert.equal(r.status, 200);
      assert.equal(r.json.customer, 'globex');
      assert.equal(r.json.limits.quota_day, null);
      assert.equal(r.json.limits.max_inflight, null);
      assert.deepEqual(r.json.usage.day.limit, null);
      assert.deepEqual(r.json.usage.day.remaining, null);
      assert.equal(r.json.usage.day.used, 1);
      assert.equal(r.json.usage.inflight, 0, 'no in-flight limit, no lease');
    });

    it('needs a credential, and only GET or HEAD', async () => {
      const anon = await account(gw, {});
      assert.equal(anon.status, 401);
      assert.equal(anon.json.error?.code, 'unauthorized');
      const post = await account(gw, { 'x-api-key': 'acct-open' }, 'POST');
      assert.equal(post.status, 405);
      assert.equal(post.headers.allow, 'GET, HEAD');
      assert.equal(post.json.error?.code, 'method_not_allowed');
    });
  });
}

suite('memory', () => ({ kind: 'memory' }));

let redis: RedisProcess;
before(async () => { redis = await startRedis(); });
after(async () => { await redis?.stop(); });
suite('redis', () => ({ kind: 'redis', url: redis.url }));
