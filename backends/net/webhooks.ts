// In-process delivery of results to client-chosen webhook URLs: the sender of a backend
// without --webhook-redis. Signed with Standard Webhooks (webhook-signing.ts); one
// attempt, with its SSRF guard and verdict, is webhook-attempt.ts.
//
// Delivery: a bounded in-memory queue drained by a small number of workers. Retryable
// failures are retried with exponential backoff and jitter up to maxAttempts; final ones
// (see AttemptResult) end the delivery. The queue is in memory and NOT durable: a
// waiting retry dies with the process. For deliveries that survive a crash or a deploy,
// enqueue in Redis instead (backends/webhooks/, sluice-webhooks); a lost webhook is
// recoverable by the client via GET /v1/results/<id> for the result's lifetime.

import { attemptWebhook, isKeys, signingKeysFor, type AttemptResult } from './webhook-attempt.js';
import type { Connector, Resolver } from './safe-fetch.js';
import { newWebhookId, type WebhookKeys } from './webhook-signing.js';

export interface WebhookSenderOptions {
  /** The customer's keys at the moment of each attempt (a rotation meanwhile applies to the next attempt). */
  readonly signingKeys: (customer: string) => Promise<WebhookKeys>;
  readonly maxAttempts: number;
  readonly baseDelayMs: number;
  readonly timeoutMs: number;
  readonly allow: readonly string[];
  readonly resolve?: Resolver | undefined;
  readonly connect?: Connector | undefined;
  /** Deliveries waiting or retrying beyond this are dropped (counted). Default 1000. */
  readonly maxQueue?: number | undefined;
  /** Parallel deliveries. Default 4. */
  readonly concurrency?: number | undefined;
  /** Upper bound of one backoff delay. Default 60 s. */
  readonly maxDelayMs?: number | undefined;
  /** Called after every attempt (for logs and tests). */
  readonly onAttempt?: ((a: WebhookAttempt) => void) | undefined;
  /** Called once per delivery with its final outcome (for logs). */
  readonly onOutcome?: ((o: WebhookOutcome) => void) | undefined;
}

export interface WebhookOutcome {
  readonly url: string;
  readonly ok: boolean;
  readonly attempts: number;
  /** Last HTTP status, if an answer was received. */
  readonly status: number | undefined;
  readonly error: string | undefined;
}

export interface WebhookAttempt {
  readonly url: string;
  readonly attempt: number;
  readonly status: number | undefined;
  readonly error: string | undefined;
  readonly willRetry: boolean;
}

export interface WebhookCounters {
  delivered: number;
  failed: number;
  /** Attempts that were scheduled again after a retryable failure. */
  retried: number;
  /** Deliveries refused because the queue was full. */
  dropped: number;
  attempts: number;
}

export interface WebhookSender {
  /** Queues a delivery to one customer's URL (after delayMs) and returns at once; never throws for delivery problems. */
  send(customer: string, url: string, payload: object, delayMs?: number): void;
  readonly counters: Readonly<WebhookCounters>;
  /** Deliveries queued, in flight or waiting for a retry. */
  pending(): number;
  /** Resolves when nothing is queued, in flight or waiting for a retry. */
  idle(): Promise<void>;
  /** Cancels waiting retries and queued deliveries (counted as failed); for shutdown. */
  close(): void;
}

interface Job {
  /** Whose keys sign it. */
  readonly customer: string;
  readonly url: string;
  /** webhook-id: the same on every attempt, so receivers can deduplicate. */
  readonly id: string;
  readonly body: string;
  attempts: number;
}

export function createWebhookSender(opts: WebhookSenderOptions): WebhookSender {
  const maxQueue = opts.maxQueue ?? 1000;
  const concurrency = Math.max(1, opts.concurrency ?? 4);
  const maxDelayMs = opts.maxDelayMs ?? 60_000;
  const maxAttempts = Math.max(1, Math.floor(opts.maxAttempts));
  const counters: WebhookCounters = { delivered: 0, failed: 0, retried: 0, dropped: 0, attempts: 0 };
  const ready: Job[] = [];
  const waiting = new Map<NodeJS.Timeout, Job>();
  let inFlight = 0;
  let closed = false;
  let idleWaiters: (() => void)[] = [];

  const pending = (): number => ready.length + waiting.size + inFlight;

  function settleIdle(): void {
    if (pending() !== 0) return;
    const w = idleWaiters;
    idleWaiters = [];
    for (const resolve of w) resolve();
  }

  function finish(job: Job, r: AttemptResult): void {
    if (r.kind === 'ok') counters.delivered++;
    else counters.failed++;
    opts.onOutcome?.({
      url: job.url,
      ok: r.kind === 'ok',
      attempts: job.attempts,
      status: r.status,
      error: r.kind === 'ok' ? undefined : r.error,
    });
  }

  function backoff(attempts: number): number {
    // "Equal jitter": at least half the exponential delay, so retries stay spread out
    // even when many deliveries failed at the same moment.
    const exp = Math.min(maxDelayMs, opts.baseDelayMs * 2 ** (attempts - 1));
    return Math.round(exp / 2 + Math.random() * (exp / 2));
  }

  function later(job: Job, delayMs: number): void {
    const timer = setTimeout(() => {
      waiting.delete(timer);
      ready.push(job);
      pump();
    }, delayMs);
    waiting.set(timer, job);
  }

  function pump(): void {
    while (!closed && inFlight < concurrency && ready.length > 0) {
      const job = ready.shift()!;
      inFlight++;
      job.attempts++;
      counters.attempts++;
      void signingKeysFor(opts.signingKeys, job.customer).then((keys) => (
        isKeys(keys) ? attemptWebhook(opts, job.url, job.id, job.body, keys) : keys
      )).then((r) => {
        inFlight--;
        const willRetry = r.kind === 'retry' && job.attempts < maxAttempts && !closed;
        opts.onAttempt?.({
          url: job.url,
          attempt: job.attempts,
          status: r.status,
          error: r.kind === 'ok' ? undefined : r.error,
          willRetry,
        });
        if (willRetry) {
          counters.retried++;
          later(job, Math.min(maxDelayMs, Math.max(backoff(job.attempts), r.retryAfterMs ?? 0)));
        } else {
          finish(job, r);
        }
        pump();
        settleIdle();
      });
    }
  }

  return {
    send(customer, url, payload, delayMs = 0) {
      if (closed || pending() >= maxQueue) {
        counters.dropped++;
        return;
      }
      const job: Job = { customer, url, id: newWebhookId(), body: JSON.stringify(payload), attempts: 0 };
      if (delayMs > 0) later(job, delayMs);
      else {
        ready.push(job);
        pump();
      }
    },
    counters,
    pending,
    idle() {
      if (pending() === 0) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
    close() {
      closed = true;
      for (const [timer, job] of waiting) {
        clearTimeout(timer);
        finish(job, { kind: 'final', status: undefined, error: 'sender closed' });
      }
      waiting.clear();
      for (const job of ready.splice(0)) finish(job, { kind: 'final', status: undefined, error: 'sender closed' });
      settleIdle();
    },
  };
}
