import { Cluster } from 'ioredis';
import type { RedisClient } from './redis-client.js';

/** Every key matching `match`; SCAN sees one server's keyspace, so a Cluster's masters are each scanned. */
export async function scanAll(client: RedisClient, match: string): Promise<string[]> {
  const servers = client instanceof Cluster ? client.nodes('master') : [client];
  const out: string[] = [];
  for (const server of servers) {
    let cursor = '0';
    do {
      const [next, found] = await server.scan(cursor, 'MATCH', match, 'COUNT', 500);
      cursor = next;
      out.push(...found);
    } while (cursor !== '0');
  }
  return out;
}
