import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { storeConfigOf } from '../config/load.js';
import { startRedis, startRedisOnPort, type RedisProcess } from '../../test/harness/redis.js';
import { logConnection } from './connection-log.js';
import { RedisStore } from './redis-store.js';

// What an operator reads about the store's connection: one line when it is lost, one when
// it is back (how long, how many attempts), none per retry; and an error when ioredis gives
// up for good, but not when the process closes the store itself. Against a real
// redis-server killed and started again on its port.

interface Line { msg: string; level: number; down_ms?: number; attempts?: number; error?: string }

function capture(): { log: pino.Logger; lines: Line[]; next(msg: string): Promise<Line> } {
  const lines: Line[] = [];
  const waiters: { msg: string; resolve: (l: Line) => void }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const text of chunk.toString().split('\n').filter(Boolean)) {
        const l = JSON.parse(text) as Line;
        lines.push(l);
        for (const w of waiters.splice(0)) if (w.msg === l.msg) w.resolve(l); else waiters.push(w);
      }
      done();
    },
  });
  return {
    log: pino({ level: 'info' }, sink), lines,
    next: (msg) => new Promise((resolve) => waiters.push({ msg, resolve })),
  };
}

/** Resolves after `n` more 'reconnecting' events of `client`. */
function reconnects(client: Redis, n: number): Promise<void> {
  return new Promise((resolve) => {
    let seen = 0;
    const on = (): void => { if (++seen >= n) { client.off('reconnecting', on); resolve(); } };
    client.on('reconnecting', on);
  });
}

describe('the store connection in the log', () => {
  let redis: RedisProcess | undefined;
  after(async () => { await redis?.stop(); });

  it('connected, lost once through several failed attempts, back with how long and how many; nothing when closed by us', async () => {
    redis = await startRedis();
    const { log, lines, next } = capture();
    const store = new RedisStore(storeConfigOf({ kind: 'redis', url: redis.url, timeout_ms: 1000 }));
    const connected = next('store connected');
    logConnection(store.client, log, 'test', () => store.closing);
    await connected;

    const lost = next('store connection lost; reconnecting');
    const port = redis.port;
    await redis.stop();
    redis = undefined;
    await lost;
    // Several attempts fail against the closed port before the server is back.
    await reconnects(store.client as Redis, 3);
    const back = next('store connection back');
    redis = await startRedisOnPort(port);
    const b = await back;
    assert.ok(b.attempts! >= 3, `attempts ${b.attempts}`);
    assert.ok(b.down_ms! > 0);
    assert.equal(lines.filter((l) => l.msg === 'store connection lost; reconnecting').length, 1, 'one line for the outage, not one per attempt');

    const ended = once(store.client, 'end');
    await store.close();
    await ended;
    assert.deepEqual(lines.filter((l) => l.level >= 50), [], 'closing the store is not an error');
  });

  it('a client that gives up (no more reconnects) is logged as an error', async () => {
    redis ??= await startRedis();
    const { lines, log, next } = capture();
    // A client told not to retry: ioredis ends it at the first lost connection, as it does
    // any client whose connect fails in a way it does not retry.
    const client = new Redis(redis.url, { retryStrategy: () => null });
    client.on('error', () => {});
    const connected = next('store connected');
    logConnection(client, log, 'test', () => false);
    await connected;
    const gaveUp = next('store connection given up: no more reconnects; limits follow the failure policy until a restart');
    await redis.stop();
    redis = undefined;
    const l = await gaveUp;
    assert.equal(l.level, 50);
    assert.equal(lines.filter((x) => x.msg.startsWith('store connection lost')).length, 1);
  });
});
