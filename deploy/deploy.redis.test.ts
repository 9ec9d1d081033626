import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { redisCli, startRedis } from '../test/harness/redis.js';

// The shipped Redis data-node settings (deploy/redis/redis-data.conf), loaded by a real
// redis-server as an operator would include them: a master with no replica in sight
// refuses writes, which is what keeps a master cut off from the sentinels' side from
// admitting from counters a failover throws away (docs/faults.md).

const DATA_CONF = fileURLToPath(new URL('../../deploy/redis/redis-data.conf', import.meta.url));

test('a data node on deploy/redis/redis-data.conf refuses writes while no replica is in sight, and evicts nothing', async () => {
  // The AOF stays off here: the test's server has no directory of its own to keep it in.
  const redis = await startRedis(['--include', DATA_CONF, '--appendonly', 'no']);
  const client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  try {
    const setting = async (name: string): Promise<string> => (await redisCli(redis.port, 'CONFIG', 'GET', name)).trim().split('\n')[1]!;
    assert.equal(await setting('min-replicas-to-write'), '1');
    assert.equal(await setting('min-replicas-max-lag'), '5');
    assert.equal(await setting('maxmemory-policy'), 'noeviction');
    await assert.rejects(client.set('sluice:probe', '1'), /NOREPLICAS/);
    assert.equal(await client.get('sluice:probe'), null, 'reads still work');
  } finally {
    client.disconnect();
    await redis.stop();
  }
});
