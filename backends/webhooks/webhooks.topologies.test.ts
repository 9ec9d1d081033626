// The queue on the gateways' other Redis deployments, read from a gateway config file
// (--store / --webhook-store): a real 6-node Cluster, where the hash-tagged prefix must
// put every key of the queue in one slot (BullMQ's scripts are multi-key), and a real
// Sentinel setup (master, 2 replicas, 3 sentinels).

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { Webhook } from 'standardwebhooks';
import { parseStoreSection } from '../../common/store-config.js';
import { redisCli, startRedisCluster, startRedisSentinel } from '../../test/harness/redis.js';
import { customerKey, newMasterKey, spawnWebhooks, startReceiver } from '../../test/harness/webhooks.js';
import { createWebhookEnqueuer } from '../../common/webhook-queue.js';

test('sluice-webhooks --store on a Redis Cluster delivers what a --webhook-store enqueuer queued; every queue key is in one slot', { timeout: 180_000 }, async () => {
  const cluster = await startRedisCluster();
  const dir = await mkdtemp(join(tmpdir(), 'sluice-whcluster-'));
  const rx = await startReceiver();
  const master = newMasterKey();
  const text = `store: {kind: redis, mode: cluster, nodes: ${JSON.stringify(cluster.nodes)}, prefix: "c:"}\n`;
  const file = join(dir, 'gateway.yaml');
  await writeFile(file, text);
  const q = createWebhookEnqueuer({ store: parseStoreSection(text), log: pino({ level: 'silent' }) });
  try {
    const real = await spawnWebhooks({ storeFile: file }, [], { SLUICE_MASTER_KEY: master });
    try {
      for (let i = 0; i < 3; i++) q.send('acme', `${rx.url}/c-${i}`, { i });
      await rx.until((ds) => ds.length === 3, 60_000);
      const secret = await customerKey(parseStoreSection(text), master, 'acme');
      for (const d of rx.deliveries) new Webhook(secret).verify(d.body, d.headers as Record<string, string>);
      const first = cluster.processes[0]!;
      const slot = (await redisCli(first.port, 'CLUSTER', 'KEYSLOT', '{c:webhooks}:webhooks:wait')).trim();
      assert.equal((await redisCli(first.port, 'CLUSTER', 'KEYSLOT', '{c:webhooks}:webhooks:meta')).trim(), slot);
      const owner = await cluster.masterOf(Number(slot));
      const keys = (await redisCli(owner.port, 'KEYS', '{c:webhooks}*')).trim().split('\n').filter((k) => k !== '');
      assert.ok(keys.length > 3, keys.join(' '));
    } finally {
      await real.stop();
    }
  } finally {
    await q.close(1000);
    await rx.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('sluice-webhooks --store on Sentinel delivers what a --webhook-store enqueuer queued', { timeout: 180_000 }, async () => {
  const sentinel = await startRedisSentinel();
  const dir = await mkdtemp(join(tmpdir(), 'sluice-whsentinel-'));
  const rx = await startReceiver();
  const master = newMasterKey();
  const text = `store: {kind: redis, mode: sentinel, sentinels: ${JSON.stringify(sentinel.sentinels.map((s) => `${s.host}:${s.port}`))}, sentinel_name: ${sentinel.name}}\n`;
  const file = join(dir, 'gateway.yaml');
  await writeFile(file, text);
  const q = createWebhookEnqueuer({ store: parseStoreSection(text), log: pino({ level: 'silent' }) });
  try {
    const w = await spawnWebhooks({ storeFile: file }, [], { SLUICE_MASTER_KEY: master });
    try {
      q.send('acme', `${rx.url}/s`, { s: 1 });
      await rx.until((ds) => ds.length === 1, 60_000);
      const secret = await customerKey(parseStoreSection(text), master, 'acme');
      assert.deepEqual(new Webhook(secret).verify(rx.deliveries[0]!.body, rx.deliveries[0]!.headers as Record<string, string>), { s: 1 });
      assert.equal((await redisCli(sentinel.master.port, 'EXISTS', '{sluice:webhooks}:webhooks:meta')).trim(), '1', 'the queue lives on the master');
    } finally {
      await w.stop();
    }
  } finally {
    await q.close(1000);
    await rx.close();
    await sentinel.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
