// The SSRF guard runs on every attempt of a queued delivery, not only the first: a
// receiver name that resolves to loopback (allowed here) and then, on the retry, to a
// private address is refused before connecting. The worker runs in-process so the
// table resolver and the loopback-only connector can be injected; Redis is real.

import { randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { pollUntil } from '../../test/harness/poll.js';
import { startRedis, type RedisProcess } from '../../test/harness/redis.js';
import { urlStore, startReceiver, type Receiver } from '../../test/harness/webhooks.js';
import { loopbackOnlyConnect, tableResolver, type ConnectCall } from '../net/net-test-helpers.js';
import { createEndpointHealth } from './endpoints.js';
import { WebhookMetrics } from './metrics.js';
import { createWebhookEnqueuer, queueConnection, queuePrefix, type WebhookEnqueuer } from '../../common/webhook-queue.js';
import { startDeliveryWorker, type DeliveryWorker } from './worker.js';
import type { RedisClient } from '../../common/redis-client.js';

let redis: RedisProcess;
let rx: Receiver;
let conn: RedisClient;
let delivery: DeliveryWorker;
let q: WebhookEnqueuer;
const connects: ConnectCall[] = [];

before(async () => {
  redis = await startRedis();
  rx = await startReceiver();
  const store = urlStore(redis.url);
  conn = queueConnection(store);
  const log = pino({ level: 'silent' });
  const endpoints = createEndpointHealth(conn, queuePrefix(store), 3_600_000, 3_600_000);
  const metrics = new WebhookMetrics(() => delivery.counts());
  delivery = startDeliveryWorker({
    connection: conn, prefix: queuePrefix(store), signingKeys: async () => ({ hmac: [randomBytes(32)], ed25519: [] }), timeoutMs: 5000,
    allow: ['127.0.0.1'],
    // First lookup: loopback (allowed); every later one: a private address (not allowed).
    resolve: tableResolver({ 'hooks.test': [['127.0.0.1'], ['10.0.0.1']] }, []),
    connect: loopbackOnlyConnect(connects),
    schedule: [50, 50, 50], concurrency: 2, lockMs: 5000, stalledIntervalMs: 5000, maxStalled: 1, deadLetterTtlSeconds: 3600,
    endpoints, metrics, log,
  });
  q = createWebhookEnqueuer({ store, log });
});

after(async () => {
  await q?.close();
  await delivery?.close();
  conn?.disconnect();
  await rx?.close();
  await redis?.stop();
});

test('a retry whose name now resolves to a private address is refused before connect, and dead-lettered', { timeout: 180_000 }, async () => {
  rx.reply = () => ({ status: 503 });
  const port = new URL(rx.url).port;
  q.send('acme', `http://hooks.test:${port}/rebind`, { n: 1 });
  const dead = await pollUntil(async () => {
    const failed = await delivery.queue.getFailed(0, 10);
    return failed.length === 1 ? failed[0] : undefined;
  }, 20_000, 50);
  assert.ok(dead.value, 'dead-lettered');
  assert.match(dead.value.failedReason, /non-public/);
  assert.equal(dead.value.attemptsMade, 2);
  assert.equal(rx.deliveries.length, 1, 'only the first attempt reached the receiver');
  assert.deepEqual(connects, [{ address: '127.0.0.1', port: Number(port), host: 'hooks.test' }], 'the retry never connected');
});
