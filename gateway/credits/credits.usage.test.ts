import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { admin, adminCli } from '../../test/harness/admin.js';
import { ADMIN_TOKEN, sha256, testConfig } from '../../test/harness/config.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { startRedis, type RedisProcess } from '../../test/harness/redis.js';
import { startWorkBackend, type WorkBackend } from '../../test/harness/work-backend.js';
import type { UsageDay, UsageReport } from './usage-report.js';

// Usage a billing system can read: per customer per UTC day, counted in memory and
// written in batches (no store call per request), read back by the customer
// (GET /v1/account/usage), the operator (GET /admin/usage) and `sluice admin usage`
// (table, JSON, CSV, and Stripe meter events to a file).

const PLANS = {
  meter: { rate: 1000, burst: 1000, quota_day: 100_000, costs: { base: 1, format_auto: 4, detection: 6, per_megapixel: 1 } },
  plain: { rate: 1000, burst: 1000 },
};
const KEYS = [
  { digest: sha256('use-acme'), customer: 'acme', plan: 'meter' },
  { digest: sha256('use-globex'), customer: 'globex', plan: 'plain' },
];
const today = new Date().toISOString().slice(0, 10);

const cli = adminCli;

describe('daily usage for billing (Redis)', () => {
  let redis: RedisProcess;
  let client: Redis;
  let backend: WorkBackend;
  let gw: GatewayProcess;
  let cfg: object;

  before(async () => {
    redis = await startRedis();
    client = new Redis(redis.url);
    backend = await startWorkBackend();
    cfg = testConfig({
      // Leases off: every request is one admit call, so the count below is exact.
      upstreams: [backend.url], store: { kind: 'redis', url: redis.url, timeout_ms: 2000, lease: { enabled: false } }, plans: PLANS, keys: KEYS, log: { access: false },
      // No flush while the requests run: the batch goes when the gateway stops.
      billing: { usage: { flush_ms: 60_000 } },
    });
    gw = await spawnGateway(cfg);
  });
  after(async () => {
    await gw?.stop();
    client?.disconnect();
    await backend?.close();
    await redis?.stop();
  });

  const post = async (key: string, headers: Record<string, string>, body = ''): Promise<number> => {
    const res = await request(`${gw.url}/v1/images`, { method: 'POST', headers: { 'x-api-key': key, ...headers }, body });
    await res.body.dump();
    return res.statusCode;
  };
  const evalsha = async (): Promise<number> => {
    const stats = await client.info('commandstats');
    return Number(/cmdstat_evalsha:calls=(\d+)/.exec(stats)?.[1] ?? 0) + Number(/cmdstat_eval:calls=(\d+)/.exec(stats)?.[1] ?? 0);
  };

  it('counts every request with no store call of its own: one admit per request, the usage written when the batch goes', async (t) => {
    await client.config('RESETSTAT');
    const t0 = performance.now();
    const N = 120;
    const statuses = await Promise.all(Array.from({ length: N }, (_, i) => {
      // 40 priced exactly (no settlement call), 40 format: auto exactly, 40 for the plain plan.
      if (i % 3 === 0) return post('use-acme', {});
      if (i % 3 === 1) return post('use-acme', { 'x-options': '{"format":"auto"}' });
      return post('use-globex', {}, 'x'.repeat(100));
    }));
    const seconds = (performance.now() - t0) / 1000;
    assert.deepEqual([...new Set(statuses)], [200]);
    const calls = await evalsha();
    t.diagnostic(`${calls} script calls for ${N} requests in ${seconds.toFixed(2)} s`);
    // One admit each, plus the gateway's heartbeat (one a second); nothing for usage yet.
    assert.ok(calls >= N && calls <= N + Math.ceil(seconds) + 2, `${calls} script calls for ${N} requests`);
    assert.equal(await client.exists(`sluice:usage:{acme}:${today}`), 0, 'not written yet: it is batched');
  });

  it('writes the batch when the gateway stops, and a new gateway reads it', async () => {
    // Four more for acme: a detection (3 megapixels reported), a failure (refunded), a settlement downward.
    assert.equal(await post('use-acme', { 'x-test-work': 'pixels=2500000, encodes=0, detect' }), 200);
    assert.equal(await post('use-acme', { 'x-options': '{"format":"auto"}', 'x-test-status': '502' }), 502);
    assert.equal(await post('use-acme', { 'x-options': '{"format":"auto"}', 'x-test-work': 'pixels=10, encodes=1' }, 'x'.repeat(10)), 200);
    await gw.stop();
    gw = await spawnGateway(cfg);
    const r = await admin(gw.adminUrl, 'GET', `/admin/usage?from=${today}&to=${today}`);
    assert.equal(r.status, 200);
    const days = (r.body as UsageReport).days;
    assert.deepEqual(days.map((d) => d.customer), ['acme', 'globex']);
    const acme = days[0]!;
    // 40 x 1 + 40 x 5, then 1 + 6 + 3 (detect, 3 MP), 5 refunded, 1 + 4 + 1 estimated and settled to 1 + 1 = 2.
    assert.deepEqual(acme, {
      date: today, customer: 'acme', requests: 83, refused: 0, replayed: 0,
      units_charged: 40 + 200 + 10 + 5 + 6, units_refunded: 5 + 4, units_net: 40 + 200 + 10 + 2,
      bytes_in: 10, bytes_out: acme.bytes_out, megapixels: 3 + 1,
      classes: { image: 83, fetch: 0, detect: 0, account: 0, other: 0 },
      features: { auto: 41, face: 1 },
    } satisfies UsageDay);
    assert.ok(acme.bytes_out > 83 * 20, `bytes_out ${acme.bytes_out}`);
    const globex = days[1]!;
    assert.deepEqual([globex.requests, globex.units_charged, globex.units_net, globex.bytes_in], [40, 40, 40, 4000]);
  });

  it('GET /v1/account/usage: the customer\'s own days, in its unit; bad ranges are 400', async () => {
    const res = await request(`${gw.url}/v1/account/usage?from=${today}&to=${today}`, { headers: { 'x-api-key': 'use-acme' } });
    assert.equal(res.statusCode, 200);
    const body = await res.body.json() as UsageReport;
    assert.deepEqual([body.from, body.to, body.unit, body.days.length, body.days[0]!.customer], [today, today, 'units', 1, 'acme']);
    const plain = await request(`${gw.url}/v1/account/usage`, { headers: { 'x-api-key': 'use-globex' } });
    const p = await plain.body.json() as UsageReport;
    assert.deepEqual([p.unit, p.to, p.days.map((d) => d.customer)], ['requests', today, ['globex']]);
    for (const q of ['from=2026-13-01', 'to=yesterday', 'from=2026-12-02&to=2026-12-01', 'from=2020-01-01&to=2026-01-01']) {
      const bad = await request(`${gw.url}/v1/account/usage?${q}`, { headers: { 'x-api-key': 'use-acme' } });
      assert.equal(bad.statusCode, 400, q);
      assert.equal((await bad.body.json() as { error: { code: string } }).error.code, 'bad_request');
    }
  });

  it('sluice admin usage daily: a table, JSON or CSV; usage export: Stripe meter events in a file', async () => {
    const env = { SLUICE_ADMIN_URL: gw.adminUrl, SLUICE_ADMIN_TOKEN: ADMIN_TOKEN };
    const table = await cli(['usage', 'daily', '--from', today, '--to', today], env);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^DATE\s+CUSTOMER\s+REQUESTS\s+REFUSED\s+REPLAYED\s+UNITS\s+REFUNDED\s+NET\s+BYTES_IN\s+BYTES_OUT\s+MEGAPIXELS\s+IMAGE\s+FETCH\s+DETECT\s+ACCOUNT\s+OTHER\s+AUTO\s+FACE$/);
    assert.match(lines[1]!, new RegExp(`^${today}\\s+acme\\s+83\\s+0\\s+0\\s+261\\s+9\\s+252\\s+10\\s+\\d+\\s+4\\s+83\\s+0\\s+0\\s+[01]\\s+0\\s+41\\s+1$`));
    const csv = await cli(['usage', 'daily', '--customer', 'globex', '--from', today, '--csv'], env);
    assert.equal(csv.code, 0, csv.stderr);
    const rows = csv.stdout.split('\r\n');
    assert.equal(rows[0], 'date,customer,requests,refused,replayed,units,refunded,net,bytes_in,bytes_out,megapixels,image,fetch,detect,account,other,auto,face');
    assert.match(rows[1]!, new RegExp(`^${today},globex,40,0,0,40,0,40,4000,\\d+,0,40,0,0,[01],0,0,0$`));
    const json = await cli(['usage', 'daily', '--customer', 'acme', '--json'], env);
    assert.equal((JSON.parse(json.stdout) as UsageReport).days[0]!.units_net, 252);
    const out = join(mkdtempSync(join(tmpdir(), 'sluice-usage-')), 'meter-events.jsonl');
    const exp = await cli(['usage', 'export', '--from', today, '--to', today, '--out', out], env);
    assert.equal(exp.code, 0, exp.stderr);
    assert.match(exp.stdout, /^wrote 2 meter events to /);
    const events = readFileSync(out, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(events[0], {
      event_name: 'sluice_units', timestamp: Date.parse(`${today}T00:00:00Z`) / 1000, identifier: `sluice_units:acme:${today}`,
      payload: { stripe_customer_id: 'acme', value: '252' },
    });
    assert.equal((events[1]!.payload as { stripe_customer_id: string }).stripe_customer_id, 'globex');
    const bad = await cli(['usage', 'daily', '--from', 'soon'], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /400 bad_request: from: must be a date yyyy-mm-dd/);
  });
});
