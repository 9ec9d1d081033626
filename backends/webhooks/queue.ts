// The webhook queue both sides share: sluice-backend --webhook-redis enqueues here,
// sluice-webhooks delivers from here. BullMQ on the same ioredis clients (and the same
// store config: standalone, Sentinel or Cluster) as the gateways.
//
// Keys: `{<store.prefix>webhooks}:webhooks:*` (BullMQ's) and
// `{<store.prefix>webhooks}:endpoint*` (endpoint health, endpoints.ts). The braces are a
// Redis Cluster hash tag: every key of the queue lives in one slot, which BullMQ's
// multi-key scripts need.

import { Queue, type JobsOptions } from 'bullmq';
import type { Logger } from 'pino';
import type { StoreConfig } from '../../common/store-config.js';
import { createRedisClient, type RedisClient } from '../../common/redis-client.js';
import { newWebhookId } from '../net/webhook-signing.js';

export const QUEUE_NAME = 'webhooks';
const JOB_NAME = 'deliver';
/**
 * BullMQ's own attempt bound, set high on purpose: the worker owns the retry schedule
 * and fails a delivery for good (UnrecoverableError) when its schedule is used up, so
 * a schedule change needs no change to jobs already queued.
 */
const JOB_ATTEMPTS = 1000;
// A delivered job is kept a little while, for an operator looking at the queue.
const KEEP_DELIVERED = { age: 3600, count: 10_000 };

export interface WebhookJobData {
  /** Whose keys sign it (read at each attempt, so a rotation meanwhile applies). */
  readonly customer: string;
  readonly url: string;
  /** The JSON body, exactly as signed and sent on every attempt. */
  readonly body: string;
}

export function queuePrefix(store: StoreConfig): string {
  return `{${store.prefix}webhooks}`;
}

/**
 * A client for BullMQ. maxRetriesPerRequest null: while Redis is away, commands wait
 * for it to come back instead of failing, so an enqueue or a delivery's bookkeeping is
 * delayed, not lost (BullMQ's workers require it).
 */
export function queueConnection(store: StoreConfig): RedisClient {
  return createRedisClient(store, { maxRetriesPerRequest: null, enableOfflineQueue: true });
}

export interface WebhookEnqueuer {
  /** Enqueues at once in the background; never throws (a failure is logged and counted). */
  send(customer: string, url: string, payload: object, delayMs?: number): void;
  /** Enqueues not yet acknowledged by Redis. */
  pending(): number;
  /** Waits (up to waitMs) for pending enqueues, then disconnects. */
  close(waitMs?: number): Promise<void>;
}

export interface EnqueuerOptions {
  readonly store: StoreConfig;
  readonly log: Logger;
  readonly onResult?: ((ok: boolean) => void) | undefined;
}

export function createWebhookEnqueuer(opts: EnqueuerOptions): WebhookEnqueuer {
  const connection = queueConnection(opts.store);
  // Redis trouble is reported where it matters (an enqueue that fails); ioredis's
  // reconnect noise would otherwise be an unhandled 'error' event.
  connection.on('error', () => {});
  const queue = new Queue<WebhookJobData>(QUEUE_NAME, { connection, prefix: queuePrefix(opts.store) });
  queue.on('error', () => {});
  const inFlight = new Set<Promise<void>>();
  return {
    send(customer, url, payload, delayMs = 0) {
      const id = newWebhookId();
      const jobOpts: JobsOptions = {
        jobId: id, delay: delayMs, attempts: JOB_ATTEMPTS, backoff: { type: 'sluice' }, removeOnComplete: KEEP_DELIVERED,
      };
      const p = queue.add(JOB_NAME, { customer, url, body: JSON.stringify(payload) }, jobOpts).then(
        () => { opts.onResult?.(true); },
        (err: Error) => {
          opts.onResult?.(false);
          opts.log.error({ webhook_id: id, err: err.message }, 'webhook not enqueued');
        },
      ).finally(() => { inFlight.delete(p); });
      inFlight.add(p);
    },
    pending: () => inFlight.size,
    async close(waitMs = 10_000) {
      let timer: NodeJS.Timeout | undefined;
      const gaveUp = await Promise.race([
        Promise.all([...inFlight]).then(() => false),
        new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), waitMs); }),
      ]);
      clearTimeout(timer);
      if (gaveUp) opts.log.error({ pending: inFlight.size }, 'webhooks not enqueued before shutdown (Redis unreachable)');
      await queue.close().catch(() => {});
      connection.disconnect();
    },
  };
}
