import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { Pool } from 'undici';
import { admin } from '../../test/harness/admin.js';
import { sha256, testConfig } from '../../test/harness/config.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { metricValue, scrapeMetrics } from '../../test/harness/metrics.js';
import { startRedis, type RedisProcess } from '../../test/harness/redis.js';
import { customerKey, newMasterKey, spawnWebhooks, startReceiver, urlStore, type Receiver, type WebhooksProcess } from '../../test/harness/webhooks.js';
import { startWorkBackend, type WorkBackend } from '../../test/harness/work-backend.js';

// quota.threshold: crossing 80% and 100% of a day or month quota sends one event per
// threshold and period to the customer's webhook_url, through the durable pipeline
// (BullMQ in the store's Redis, delivered and signed by a real sluice-webhooks), however
// many gateways see the count cross it, and even when a refund lets it cross twice. Each
// event is signed with its customer's own webhook key, and no other customer's verifies it.

const MASTER = newMasterKey();
const PLANS = { warned: { quota_day: 50, quota_month: 60 } };
const KEYS = [
  { digest: sha256('qw-acme'), customer: 'acme', plan: 'warned' },
  { digest: sha256('qw-silent'), customer: 'silent', plan: 'warned' },
  { digest: sha256('qw-cfg'), customer: 'cfgco', plan: 'warned' },
];
const GATEWAYS = 3;

interface ThresholdEvent {
  type: string;
  timestamp: string;
  data: { customer: string; plan: string; period: 'day' | 'month'; period_start: string; threshold_percent: number; quota: number; used: number; unit: string };
}

describe('quota.threshold webhooks across 3 gateways', () => {
  let redis: RedisProcess;
  let rx: Receiver;
  let worker: WebhooksProcess;
  let backend: WorkBackend;
  let gws: GatewayProcess[] = [];
  let pools: Pool[] = [];

  before(async () => {
    redis = await startRedis();
    rx = await startReceiver();
    backend = await startWorkBackend();
    worker = await spawnWebhooks(redis.url, [], { SLUICE_MASTER_KEY: MASTER });
    const cfg = testConfig({
      upstreams: [backend.url], store: { kind: 'redis', url: redis.url, timeout_ms: 2000 }, plans: PLANS, keys: KEYS, log: { access: false },
      customers: { cfgco: { webhook_url: `${rx.url}/cfgco` } },
      upstream: { retry: { attempts: 0 } },
      // The receiver is on loopback, which the SSRF policy refuses unless listed (as sluice-webhooks --allow).
      billing: { quota_warnings: { allow: ['127.0.0.1'] } },
    });
    // One after another: on a busy host, processes started together can each miss their start-up deadline.
    for (let i = 0; i < GATEWAYS; i++) gws.push(await spawnGateway(cfg));
    pools = gws.map((g) => new Pool(g.url, { connections: 16 }));
  });
  after(async () => {
    await Promise.all(pools.map((p) => p.close()));
    await Promise.all(gws.map((g) => g.stop()));
    await worker?.stop();
    await rx?.close();
    await backend?.close();
    await redis?.stop();
  });

  const send = async (i: number, key: string, headers: Record<string, string> = {}): Promise<number> => {
    const res = await pools[i % GATEWAYS]!.request({ method: 'POST', path: '/v1/images', headers: { 'x-api-key': key, ...headers }, body: '' });
    await res.body.dump();
    return res.statusCode;
  };
  const keyOf = (customer: string): Promise<string> => customerKey(urlStore(redis.url), MASTER, customer);
  const events = async (path: string, customer: string, other: string): Promise<ThresholdEvent[]> => {
    const [own, foreign] = [new Webhook(await keyOf(customer)), new Webhook(await keyOf(other))];
    return rx.deliveries.filter((d) => d.path === path).map((d) => {
      // Signed by the pipeline with the customer's own key: the official verifier takes it, and refuses another customer's key.
      own.verify(d.body, d.headers as Record<string, string>);
      assert.throws(() => foreign.verify(d.body, d.headers as Record<string, string>));
      return JSON.parse(d.body) as ThresholdEvent;
    });
  };

  it('a webhook_url is checked by the SSRF address policy when it is set', async () => {
    const refused = await admin(gws[0]!.adminUrl, 'PUT', '/admin/customers/acme', { plan: 'warned', webhook_url: 'http://10.0.0.1/hook' });
    assert.equal(refused.status, 400);
    assert.match(refused.body.error.message as string, /^webhook_url: 10\.0\.0\.1 is a loopback, private or special address/);
    const scheme = await admin(gws[0]!.adminUrl, 'PUT', '/admin/customers/acme', { plan: 'warned', webhook_url: 'ftp://example.com/x' });
    assert.equal(scheme.status, 400);
    const set = await admin(gws[0]!.adminUrl, 'PUT', '/admin/customers/acme', { plan: 'warned', webhook_url: `${rx.url}/acme` });
    assert.equal(set.status, 200);
    assert.equal((await admin(gws[1]!.adminUrl, 'GET', '/admin/customers/acme')).body.webhook_url, `${rx.url}/acme`);
  });

  it('80% and 100% of the day, 80% of the month: one event each, from 3 gateways racing, a refund crossing 100% again included', async () => {
    // 49 at once over the three gateways, then a 50th that fails (crossing 100%, then refunded), then the real 50th.
    const first = await Promise.all(Array.from({ length: 49 }, (_, i) => send(i, 'qw-acme')));
    assert.deepEqual([...new Set(first)], [200]);
    assert.equal(await send(0, 'qw-acme', { 'x-test-status': '500' }), 500);
    // The refund lands in the store just after the response: wait until it admits again.
    let last = 0;
    for (let i = 0; last !== 200 && i < 50; i++) {
      last = await send(i, 'qw-acme');
      if (last !== 200) await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(last, 200);
    assert.equal(await send(1, 'qw-acme'), 429);
    await rx.until((ds) => ds.filter((d) => d.path === '/acme').length >= 3, 20_000);
    // Nothing more comes: every gateway that saw a crossing found it marked already.
    await new Promise((r) => setTimeout(r, 1500));
    const got = await events('/acme', 'acme', 'cfgco');
    const seen = got.map((e) => `${e.data.period} ${e.data.threshold_percent}`).sort();
    assert.deepEqual(seen, ['day 100', 'day 80', 'month 80']);
    const today = new Date().toISOString().slice(0, 10);
    const day80 = got.find((e) => e.data.period === 'day' && e.data.threshold_percent === 80)!;
    assert.deepEqual({ ...day80.data, used: 0 }, {
      customer: 'acme', plan: 'warned', subject: 'acme', period: 'day', period_start: today, threshold_percent: 80, quota: 50, used: 0, unit: 'requests',
    });
    assert.ok(day80.data.used >= 40 && day80.data.used <= 45, `used ${day80.data.used} at the 80% crossing`);
    assert.equal(day80.type, 'quota.threshold');
    const month80 = got.find((e) => e.data.period === 'month')!;
    assert.equal(month80.data.period_start, `${today.slice(0, 7)}-01`);
    let duplicates = 0;
    for (const g of gws) duplicates += metricValue(await scrapeMetrics(g.adminUrl), 'sluice_quota_warnings_total', { result: 'duplicate' });
    assert.ok(duplicates >= 1, 'the second crossing of 100% was noticed and suppressed');
  });

  it("a customer's webhook_url from the config works too; a customer without one gets nothing", async () => {
    await Promise.all(Array.from({ length: 45 }, (_, i) => send(i, 'qw-cfg')));
    await Promise.all(Array.from({ length: 45 }, (_, i) => send(i, 'qw-silent')));
    await rx.until((ds) => ds.some((d) => d.path === '/cfgco'), 20_000);
    assert.deepEqual((await events('/cfgco', 'cfgco', 'acme')).map((e) => `${e.data.period} ${e.data.threshold_percent}`), ['day 80']);
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual([...new Set(rx.deliveries.map((d) => d.path))].sort(), ['/acme', '/cfgco']);
  });
});
