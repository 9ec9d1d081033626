import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { pollUntil } from '../test/harness/poll.js';
import { redisCli, startLoneSentinel, startRedis, startRedisSentinel } from '../test/harness/redis.js';
import { createRedisClient } from './redis-client.js';
import { parseStoreSection } from './store-config.js';

// Sentinel-mode clients, and the duplicates BullMQ makes of them, across a master's
// kill -9 and the failover that follows: every one must end on the promoted master.
//
// The trap (ioredis 5): its failover detector disconnects the connector when a sentinel
// announces +switch-master; if the client is then reconnecting (its master was killed)
// and in the middle of asking the sentinels, that connect fails with "Connection is
// closed." and the client is given up for good. The window is the lookup: here a
// sentinel that does not answer (stopped, for real) makes every lookup wait the full
// 500 ms for it, and the clients reconnect 10 ms after each refused connect, so nearly
// every one of the 12 is inside a lookup when the announcement comes. Before the fix the
// webhook worker lost its connection this way in the fault harness, about one failover
// in five, and the clients here ended by the handful.

const CLIENTS = 6;

describe('Sentinel clients across a failover', { timeout: 120_000 }, () => {
  it('every client and every duplicate of one reconnects to the promoted master, even when +switch-master lands during a lookup', async () => {
    const s = await startRedisSentinel();
    const clients: Redis[] = [];
    try {
      const text = `store: {kind: redis, mode: sentinel, sentinels: ${JSON.stringify(s.sentinels.map((x) => `${x.host}:${x.port}`))}, sentinel_name: ${s.name}}\n`;
      const cfg = parseStoreSection(text);
      for (let i = 0; i < CLIENTS; i++) {
        // The webhook queue's options (commands wait for Redis rather than fail), reconnecting at once.
        const c = createRedisClient(cfg, { maxRetriesPerRequest: null, enableOfflineQueue: true, retryStrategy: () => 10 }) as Redis;
        clients.push(c, c.duplicate({ connectionName: `dup-${i}` }));
      }
      for (const c of clients) c.on('error', () => {});
      await Promise.all(clients.map((c) => c.ping()));
      assert.deepEqual(new Set(await Promise.all(clients.map(tcpPort))), new Set([s.master.port]), 'all on the first master');

      s.sentinelProcesses[2]!.signal('SIGSTOP');
      s.master.signal('SIGKILL');
      const promoted = await pollUntil(async () => { const p = await s.masterPort(); return p !== undefined && p !== s.master.port ? p : undefined; }, 60_000, 100);
      assert.ok(promoted.value !== undefined, 'the two live sentinels promoted a replica');

      // Every client ready on the promoted master (a client given up has status "end" and never gets there).
      const settled = await pollUntil(async () => {
        const ports = await Promise.all(clients.map((c) => (c.status === 'ready' ? tcpPort(c).catch(() => 0) : Promise.resolve(0))));
        return ports.every((p) => p === promoted.value) ? true : undefined;
      }, 30_000, 200);
      assert.ok(settled.value, `clients not on the promoted master ${promoted.value}: ${clients.map((c) => c.status).join(', ')}`);
    } finally {
      s.sentinelProcesses[2]!.signal('SIGCONT');
      for (const c of clients) c.disconnect();
      await s.stop();
    }
  });
});

describe('Sentinel clients: the first lookup', { timeout: 120_000 }, () => {
  it('follows the highest config epoch among all sentinels, not the first one listed', async () => {
    const s = await startRedisSentinel();
    const other = await startRedis();
    // Listed first, and naming another master: a sentinel whose view is not the majority's.
    const lone = await startLoneSentinel(other.port, s.name);
    let c: Redis | undefined;
    try {
      // A failover puts the group's view at config epoch 1; the lone sentinel's stays at 0.
      await redisCli(s.sentinels[0]!.port, 'SENTINEL', 'FAILOVER', s.name);
      const promoted = await pollUntil(async () => {
        const named = await Promise.all(s.sentinels.map(async (x) => (await redisCli(x.port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', s.name)).trim().split('\n')[1]));
        return new Set(named).size === 1 && named[0] !== String(s.master.port) ? Number(named[0]) : undefined;
      }, 60_000, 100);
      assert.ok(promoted.value !== undefined, 'the forced failover promoted a replica, and every sentinel of the group says so');
      const sentinels = [{ host: '127.0.0.1', port: lone.port }, ...s.sentinels].map((x) => `${x.host}:${x.port}`);
      const cfg = parseStoreSection(`store: {kind: redis, mode: sentinel, sentinels: ${JSON.stringify(sentinels)}, sentinel_name: ${s.name}}\n`);
      c = createRedisClient(cfg, { maxRetriesPerRequest: null, enableOfflineQueue: true }) as Redis;
      c.on('error', () => {});
      assert.equal(await tcpPort(c), promoted.value, 'the first connection goes to the master of the highest epoch');
    } finally {
      c?.disconnect();
      await lone.stop();
      await other.stop();
      await s.stop();
    }
  });
});

/** The port of the server this client is connected to (its INFO). */
async function tcpPort(c: Redis): Promise<number> {
  return Number(/tcp_port:(\d+)/.exec(await c.info('server'))?.[1]);
}
