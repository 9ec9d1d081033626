import type { Logger } from 'pino';
import type { RedisClient } from '../../common/redis-client.js';

/**
 * The store connection's story for an operator, one line per change, not one per retry:
 * connected (where to), lost (with the error that ended it), back (after how long and how
 * many attempts), and given up for good (ioredis stops reconnecting: every decision is
 * the failure policy's until the process restarts). An outage of minutes with a reconnect
 * a second is two lines. `closing` tells this process's own close from a give-up.
 */
export function logConnection(client: RedisClient, log: Logger, where: string, closing: () => boolean): void {
  let everReady = false;
  let downSince: number | undefined;
  let attempts = 0;
  let lastError = '';
  client.on('error', (err: Error) => { lastError = err.message; });
  client.on('reconnecting', () => { attempts++; });
  client.on('close', () => {
    if (!everReady || downSince !== undefined || closing()) return;
    downSince = Date.now();
    log.warn({ store: where, error: lastError }, 'store connection lost; reconnecting');
  });
  client.on('ready', () => {
    if (!everReady) log.info({ store: where }, 'store connected');
    else if (downSince !== undefined) log.info({ store: where, down_ms: Date.now() - downSince, attempts, last_error: lastError }, 'store connection back');
    everReady = true;
    downSince = undefined;
    attempts = 0;
  });
  client.on('end', () => {
    if (closing()) return;
    log.error({ store: where, attempts, last_error: lastError }, 'store connection given up: no more reconnects; limits follow the failure policy until a restart');
  });
}
