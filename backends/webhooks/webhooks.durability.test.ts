// Nothing lost past one process: real redis-server, two real sluice-backend processes
// enqueueing (--webhook-redis), real sluice-webhooks processes delivering, killed with
// SIGKILL, stopped with SIGTERM, and a Redis restarted from its AOF. Every webhook must
// arrive at least once, with the webhook-id it had before, verifiable by standardwebhooks.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { Webhook } from 'standardwebhooks';
import { request } from 'undici';
import { photo } from '../image/fixtures.js';
import { redisCli, startRedis, startRedisOnPort } from '../../test/harness/redis.js';
import { customerKey, newMasterKey, urlStore, spawnImageBackend, spawnWebhooks, startReceiver, type Delivery, type Receiver } from '../../test/harness/webhooks.js';
import { createWebhookEnqueuer } from '../../common/webhook-queue.js';

const MASTER = newMasterKey();
const ENV = { SLUICE_MASTER_KEY: MASTER };
const CUSTOMER = 'acme';
const verify = async (redisUrl: string, d: Delivery): Promise<unknown> => new Webhook(await customerKey(urlStore(redisUrl), MASTER, CUSTOMER)).verify(d.body, d.headers as Record<string, string>);
const LOCK_MS = 2000;
const STALLED_MS = 1000;
// Short enough for a test, long enough that a retry is still waiting when the worker dies.
const WORKER_ARGS = ['--retry-schedule-ms', '3000,1000,1000,1000,1000,1000', '--lock-ms', String(LOCK_MS), '--stalled-interval-ms', String(STALLED_MS)];
const DELAYED_KEY = '{sluice:webhooks}:webhooks:delayed';

const idOf = (d: Delivery): string => String(d.headers['webhook-id']);

/** From now on the receiver answers 200; returns the webhook-ids it accepted, by path. */
function acceptAll(rx: Receiver): Map<string, Set<string>> {
  const accepted = new Map<string, Set<string>>();
  rx.reply = (d) => {
    accepted.set(d.path, (accepted.get(d.path) ?? new Set()).add(idOf(d)));
    return { status: 200 };
  };
  return accepted;
}

/** A webhook for each path, from a real backend that processes an image and enqueues the outcome. */
async function submit(backendUrl: string, hookUrl: string): Promise<string> {
  const res = await request(`${backendUrl}/v1/images`, {
    method: 'POST', body: photo(), headers: { 'x-sluice-customer': CUSTOMER, 'x-options': JSON.stringify({ resize: { width: 64 }, format: 'jpeg', webhook: hookUrl }) },
  });
  const text = await res.body.text();
  assert.equal(res.statusCode, 202, text);
  return (JSON.parse(text) as { id: string }).id;
}

describe('webhooks survive the loss of a process', { timeout: 180_000 }, () => {
  it('kill -9 of sluice-webhooks with one delivery in flight and three waiting for a retry: after a restart all arrive, each with its id', async (t) => {
    const redis = await startRedis();
    const rx = await startReceiver();
    const backends = [await spawnImageBackend(['--webhook-redis', redis.url]), await spawnImageBackend(['--webhook-redis', redis.url])];
    let w = await spawnWebhooks(redis.url, WORKER_ARGS, ENV);
    try {
      // Before the kill: /inflight is held open, the others answer 503 once and wait for their retry.
      rx.reply = (d) => (d.path === '/inflight' ? 'hold' : { status: 503 });
      const paths = ['/inflight', '/wait-1', '/wait-2', '/wait-3'];
      const results = await Promise.all(paths.map((p, i) => submit(backends[i % 2]!.url, `${rx.url}${p}`)));
      await rx.until((ds) => paths.every((p) => ds.some((d) => d.path === p)));
      const ids = new Map(paths.map((p) => [p, idOf(rx.deliveries.find((d) => d.path === p)!)]));
      for (const [i, p] of paths.entries()) {
        assert.equal((JSON.parse(rx.deliveries.find((d) => d.path === p)!.body) as { id: string }).id, results[i], 'the payload names its result');
      }
      const before = rx.deliveries.length;
      assert.equal(await w.stop('SIGKILL'), 'SIGKILL');
      const killedAt = performance.now();
      rx.reply = () => ({ status: 200 });
      w = await spawnWebhooks(redis.url, WORKER_ARGS, ENV);
      await rx.until((ds) => paths.every((p) => ds.slice(before).some((d) => d.path === p)), 60_000);
      const afterKill = rx.deliveries.slice(before);
      for (const p of paths) {
        const d = afterKill.find((x) => x.path === p)!;
        assert.equal(idOf(d), ids.get(p), `${p} keeps its webhook-id`);
        assert.equal((await verify(redis.url, d) as { id: string }).id, results[paths.indexOf(p)]);
      }
      const redelivery = afterKill.find((d) => d.path === '/inflight')!.at - killedAt;
      t.diagnostic(`in-flight delivery redelivered ${Math.round(redelivery)} ms after kill -9 (lock ${LOCK_MS} ms, stalled check every ${STALLED_MS} ms)`);
      // The lock must run out and two stalled checks must see it; far more means the check is not running.
      assert.ok(redelivery < LOCK_MS + 4 * STALLED_MS + 10_000, `redelivered after ${Math.round(redelivery)} ms`);
    } finally {
      await w.stop('SIGKILL');
      for (const b of backends) await b.stop();
      await rx.close();
      await redis.stop();
    }
  });

  it('a Redis restart with AOF loses nothing: waiting retries and webhooks enqueued while it was down all arrive', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-aof-'));
    const aof = ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir];
    let redis = await startRedis(aof);
    const rx = await startReceiver();
    const w = await spawnWebhooks(redis.url, WORKER_ARGS, ENV);
    const q = createWebhookEnqueuer({ store: urlStore(redis.url), log: pino({ level: 'silent' }) });
    try {
      rx.reply = () => ({ status: 503 });
      for (let i = 0; i < 5; i++) q.send(CUSTOMER, `${rx.url}/aof-${i}`, { i });
      await rx.until((ds) => new Set(ds.map((d) => d.path)).size === 5);
      const ids = new Set(rx.deliveries.map(idOf));
      await redis.stop(); // SIGKILL: only what the AOF holds comes back
      for (let i = 5; i < 7; i++) q.send(CUSTOMER, `${rx.url}/aof-${i}`, { i });
      const accepted = acceptAll(rx);
      redis = await startRedisOnPort(redis.port, aof);
      await rx.until(() => accepted.size === 7, 60_000);
      const acceptedIds = new Set([...accepted.values()].flatMap((v) => [...v]));
      for (const id of ids) assert.ok(acceptedIds.has(id), `${id} delivered after the restart`);
      assert.equal(q.pending(), 0, 'the enqueues made while Redis was down were acknowledged');
    } finally {
      await q.close(1000);
      await w.stop('SIGKILL');
      await rx.close();
      await redis.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('SIGTERM drains: the delivery in flight finishes, waiting retries stay queued for the next process', async () => {
    const redis = await startRedis();
    const rx = await startReceiver();
    let w = await spawnWebhooks(redis.url, WORKER_ARGS, ENV);
    const q = createWebhookEnqueuer({ store: urlStore(redis.url), log: pino({ level: 'silent' }) });
    try {
      rx.reply = (d) => (d.path === '/slow' ? 'hold' : { status: 503 });
      for (const p of ['/slow', '/retry-1', '/retry-2']) q.send(CUSTOMER, `${rx.url}${p}`, { p });
      await rx.until((ds) => new Set(ds.map((d) => d.path)).size === 3);
      const exit = w.stop('SIGTERM');
      await w.waitForLine((l) => l.msg === 'stopping: finishing deliveries in flight');
      rx.release(200);
      assert.equal(await exit, 0, w.stderr());
      assert.ok(w.lines.some((l) => l.msg === 'stopped'));
      assert.equal((await redisCli(redis.port, 'ZCARD', DELAYED_KEY)).trim(), '2', 'both retries still waiting in Redis');
      // A stopped worker promotes nothing: they stay delayed however long it takes to start the next one.
      const accepted = acceptAll(rx);
      w = await spawnWebhooks(redis.url, WORKER_ARGS, ENV);
      await rx.until(() => accepted.size === 2, 60_000);
      assert.deepEqual(new Set(accepted.keys()), new Set(['/retry-1', '/retry-2']));
      assert.equal(rx.deliveries.filter((d) => d.path === '/slow').length, 1, 'the drained delivery was not sent again');
    } finally {
      await q.close(1000);
      await w.stop('SIGKILL');
      await rx.close();
      await redis.stop();
    }
  });

  it('SIGTERM of a backend right after its 202: the job finishes, its webhook is enqueued before exit and delivered', async () => {
    const redis = await startRedis();
    const rx = await startReceiver();
    const backend = await spawnImageBackend(['--webhook-redis', redis.url]);
    let w: Awaited<ReturnType<typeof spawnWebhooks>> | undefined;
    try {
      const id = await submit(backend.url, `${rx.url}/after-term`);
      assert.equal(await backend.stop('SIGTERM'), 0, backend.stderr());
      w = await spawnWebhooks(redis.url, WORKER_ARGS, ENV);
      await rx.until((ds) => ds.some((d) => d.path === '/after-term'));
      const d = rx.deliveries.find((x) => x.path === '/after-term')!;
      assert.equal((await verify(redis.url, d) as { id: string; status: string }).id, id);
    } finally {
      await w?.stop('SIGKILL');
      await backend.stop('SIGKILL');
      await rx.close();
      await redis.stop();
    }
  });
});
