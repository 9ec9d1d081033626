// The queue on a Redis Cluster: the hash-tagged prefix puts every key of the queue in one
// slot, which BullMQ's multi-key scripts need. A real 6-node cluster, a real
// sluice-webhooks reading the cluster from a gateway config file (--store), and the
// enqueuer sluice-backend --webhook-store uses.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { Webhook } from 'standardwebhooks';
import { parseStoreSection } from '../../gateway/config/load.js';
import { redisCli, startRedisCluster } from '../../test/harness/redis.js';
import { newSecret, spawnWebhooks, startReceiver } from '../../test/harness/webhooks.js';
import { createWebhookEnqueuer } from './queue.js';

test('sluice-webhooks --store on a Redis Cluster delivers what a --webhook-store enqueuer queued; every queue key is in one slot', { timeout: 120_000 }, async () => {
  const cluster = await startRedisCluster();
  const dir = await mkdtemp(join(tmpdir(), 'sluice-whcluster-'));
  const rx = await startReceiver();
  const secret = newSecret();
  const text = `store: {kind: redis, mode: cluster, nodes: ${JSON.stringify(cluster.nodes)}, prefix: "c:"}\n`;
  const file = join(dir, 'gateway.yaml');
  await writeFile(file, text);
  const q = createWebhookEnqueuer({ store: parseStoreSection(text), log: pino({ level: 'silent' }) });
  try {
    const real = await spawnWebhooks({ storeFile: file }, [], { SLUICE_WEBHOOK_SECRET: secret });
    try {
      for (let i = 0; i < 3; i++) q.send(`${rx.url}/c-${i}`, { i });
      await rx.until((ds) => ds.length === 3, 60_000);
      for (const d of rx.deliveries) new Webhook(secret).verify(d.body, d.headers as Record<string, string>);
      const master = cluster.processes[0]!;
      const slot = (await redisCli(master.port, 'CLUSTER', 'KEYSLOT', '{c:webhooks}:webhooks:wait')).trim();
      assert.equal((await redisCli(master.port, 'CLUSTER', 'KEYSLOT', '{c:webhooks}:webhooks:meta')).trim(), slot);
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
