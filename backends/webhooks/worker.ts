// The delivering side of the webhook queue: BullMQ workers that take a job, make one
// attempt (webhook-attempt.ts: SSRF guard, fresh signature, same webhook-id), and let
// BullMQ keep the job until it is delivered or dead.
//
// What survives what:
//   - a delivery waiting for its retry is a delayed job in Redis: nothing in memory;
//   - a delivery in flight when its process dies keeps its lock until --lock-ms runs out;
//     the next stalled check of any worker (every --stalled-interval-ms) then puts it
//     back in the queue, and it is sent again with the same webhook-id (at least once);
//   - a dead letter is a failed job, kept --dead-letter-ttl seconds (admin.ts replays it).

import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Logger } from 'pino';
import type { RedisClient } from '../../common/redis-client.js';
import { attemptWebhook, isKeys, signingKeysFor, type AttemptOptions } from '../net/webhook-attempt.js';
import type { WebhookKeys } from '../net/webhook-signing.js';
import type { EndpointHealth } from './endpoints.js';
import type { QueueCounts, WebhookMetrics } from './metrics.js';
import { QUEUE_NAME, type WebhookJobData } from './queue.js';
import { maxAttempts, retryDelayMs } from './schedule.js';

export interface DeliveryOptions extends AttemptOptions {
  /** The customer's signing keys at the moment of each attempt. */
  readonly signingKeys: (customer: string) => Promise<WebhookKeys>;
  readonly connection: RedisClient;
  readonly prefix: string;
  readonly schedule: readonly number[];
  readonly concurrency: number;
  readonly lockMs: number;
  readonly stalledIntervalMs: number;
  readonly maxStalled: number;
  readonly deadLetterTtlSeconds: number;
  readonly endpoints: EndpointHealth;
  readonly metrics: WebhookMetrics;
  readonly log: Logger;
}

/** An attempt that failed and may succeed later, with the receiver's Retry-After if any. */
class RetryLater extends Error {
  constructor(message: string, readonly retryAfterMs: number | undefined) { super(message); }
}

export interface DeliveryWorker {
  readonly worker: Worker<WebhookJobData>;
  readonly queue: Queue<WebhookJobData>;
  counts(): Promise<QueueCounts>;
  /** Stops taking jobs and waits for the ones in flight (the rest stay queued). */
  close(): Promise<void>;
}

export function startDeliveryWorker(o: DeliveryOptions): DeliveryWorker {
  const attempts = maxAttempts(o.schedule);
  const dead = (job: Job<WebhookJobData>, attempt: number, reason: string, why: string): UnrecoverableError => {
    o.metrics.deadLettered.labels(reason).inc();
    o.metrics.attemptsPerDelivery.labels('dead_lettered').observe(attempt);
    // The URL may carry a customer's token: logged by its origin only.
    o.log.warn({ webhook_id: job.id, endpoint: origin(job.data.url), attempt, reason, error: why }, 'webhook dead-lettered');
    return new UnrecoverableError(why);
  };

  async function deliver(job: Job<WebhookJobData>): Promise<void> {
    const attempt = job.attemptsMade + 1;
    const { url, body, customer } = job.data;
    if (await o.endpoints.isDisabled(url)) {
      await o.endpoints.failed(url, 'endpoint disabled', Date.now());
      throw dead(job, attempt, 'endpoint_disabled', 'endpoint disabled: it kept failing for longer than --disable-after');
    }
    const end = o.metrics.attemptDuration.startTimer();
    // Enqueued before deliveries named their customer: nothing can sign it as anyone's.
    if (customer === undefined) throw dead(job, attempt, 'no_customer', 'enqueued without a customer: no key can sign it');
    const keys = await signingKeysFor(o.signingKeys, customer);
    const r = isKeys(keys) ? await attemptWebhook(o, url, job.id!, body, keys) : keys;
    end();
    if (r.kind === 'ok') {
      o.metrics.attempts.labels('ok').inc();
      o.metrics.delivered.inc();
      o.metrics.attemptsPerDelivery.labels('delivered').observe(attempt);
      o.metrics.latency.observe(Math.max(0, Date.now() - job.timestamp - (job.opts.delay ?? 0)) / 1000);
      await o.endpoints.succeeded(url);
      return;
    }
    const disabled = await o.endpoints.failed(url, r.error, Date.now());
    if (r.kind === 'final' || disabled || attempt >= attempts) {
      o.metrics.attempts.labels('final').inc();
      throw dead(job, attempt, r.kind === 'final' ? 'final_answer' : disabled ? 'endpoint_disabled' : 'attempts_exhausted', r.error);
    }
    o.metrics.attempts.labels('retry').inc();
    o.log.info({ webhook_id: job.id, endpoint: origin(url), attempt, status: r.status, error: r.error }, 'webhook attempt failed; will retry');
    throw new RetryLater(r.error, r.retryAfterMs);
  }

  const worker = new Worker<WebhookJobData>(QUEUE_NAME, deliver, {
    connection: o.connection,
    prefix: o.prefix,
    concurrency: o.concurrency,
    lockDuration: o.lockMs,
    stalledInterval: o.stalledIntervalMs,
    maxStalledCount: o.maxStalled,
    removeOnFail: { age: o.deadLetterTtlSeconds },
    settings: {
      backoffStrategy: (failed, _type, err) =>
        retryDelayMs(o.schedule, failed, err instanceof RetryLater ? err.retryAfterMs : undefined) ?? 0,
    },
  });
  // Redis trouble: BullMQ retries by itself; say so once per kind of error, not per attempt.
  let lastError = '';
  worker.on('error', (err) => {
    if (err.message !== lastError) o.log.warn({ err: err.message }, 'webhook worker: redis trouble, retrying');
    lastError = err.message;
  });
  const queue = new Queue<WebhookJobData>(QUEUE_NAME, { connection: o.connection, prefix: o.prefix });
  queue.on('error', () => {});

  // One Redis round trip per scrape, whichever gauges ask.
  let cached: { at: number; p: Promise<QueueCounts> } | undefined;
  const counts = (): Promise<QueueCounts> => {
    if (cached === undefined || Date.now() - cached.at > 500) {
      cached = {
        at: Date.now(),
        p: Promise.all([queue.getJobCounts('wait', 'prioritized', 'delayed', 'active', 'failed'), o.endpoints.list()]).then(([c, eps]) => ({
          waiting: (c.wait ?? 0) + (c.prioritized ?? 0), delayed: c.delayed ?? 0, active: c.active ?? 0, deadLettered: c.failed ?? 0,
          disabledEndpoints: eps.filter((e) => e.disabledAt !== undefined).length,
        })),
      };
    }
    return cached.p;
  };
  return {
    worker,
    queue,
    counts,
    async close() {
      await worker.close();
      await queue.close();
    },
  };
}

export function origin(url: string): string {
  try { return new URL(url).origin; } catch { return 'invalid-url'; }
}
