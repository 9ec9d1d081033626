import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { testConfig } from './harness/config.js';
import { spawnGateway, type GatewayProcess } from './harness/gateway.js';
import { startRedis, type RedisProcess } from './harness/redis.js';
import { newMasterKey, spawnImageBackend, spawnWebhooks, type NodeProcess } from './harness/webhooks.js';

// One log format for every process (common/log.ts): the real gateway (its primary and a
// workers, access lines included), an image backend and the webhook worker, each run as a
// process, write JSON lines with the same fields and `time` as ISO 8601 UTC.

const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

let redis: RedisProcess | undefined;
let gateway: GatewayProcess | undefined;
let backend: NodeProcess | undefined;
let webhooks: NodeProcess | undefined;

before(async () => {
  redis = await startRedis();
  backend = await spawnImageBackend([]);
  webhooks = await spawnWebhooks(redis.url, [], { SLUICE_MASTER_KEY: newMasterKey() });
  // Redis, so the gateway runs a primary and workers (the memory store keeps one process).
  const config = testConfig({ upstreams: [(backend as NodeProcess & { url: string }).url], store: { kind: 'redis', url: redis.url } });
  gateway = await spawnGateway(config, {}, ['--workers', '2']);
});

after(async () => {
  await Promise.all([gateway?.stop(), backend?.stop(), webhooks?.stop()]);
  await redis?.stop();
});

function checkLines(lines: readonly Record<string, unknown>[], component: string): void {
  const json = lines.filter((l) => !('raw' in l));
  assert.ok(json.length > 0, `${component} wrote no JSON line`);
  assert.deepEqual(lines.filter((l) => 'raw' in l), [], `${component} wrote lines that are not JSON`);
  for (const l of json) {
    assert.match(String(l.time), ISO_MS, `${component}: ${JSON.stringify(l)}`);
    assert.equal(typeof l.level, 'number', JSON.stringify(l));
    assert.equal(typeof l.pid, 'number', JSON.stringify(l));
    assert.equal(l.component, component, JSON.stringify(l));
    assert.equal(typeof l.msg, 'string', JSON.stringify(l));
  }
}

test('the gateway, its access lines included, logs ISO times with pid and component', async () => {
  const res = await request(`${gateway!.url}/v1/anything`);
  await res.body.dump();
  const access = await gateway!.waitForLine((l) => l.msg === 'request');
  const primary = await gateway!.waitForLine((l) => l.msg === 'sluice listening');
  checkLines(gateway!.lines, 'gateway');
  // The primary and the worker that served are two processes, one format.
  assert.notEqual(access.pid, primary.pid);
});

test('an image backend logs the same way', () => {
  checkLines(backend!.lines, 'backend');
});

test('the webhook worker logs the same way', () => {
  checkLines(webhooks!.lines, 'webhooks');
});

test('lines of different processes sort by time as they are', () => {
  const all = [...gateway!.lines, ...backend!.lines, ...webhooks!.lines];
  const byString = [...all].sort((a, b) => String(a.time).localeCompare(String(b.time)));
  const byClock = [...all].sort((a, b) => Date.parse(String(a.time)) - Date.parse(String(b.time)));
  assert.deepEqual(byString.map((l) => l.time), byClock.map((l) => l.time));
});
