// Asynchronous delivery of results to client-chosen webhook URLs.
//
// Signature scheme (documented for receivers in the README):
//   X-Sluice-Timestamp: <unix seconds when this attempt was sent>
//   X-Sluice-Signature: sha256=<lowercase hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>
// The timestamp is inside the MAC so a captured delivery cannot be replayed later with
// a fresh timestamp; each retry is signed anew so receivers can keep a tight tolerance.
// Receivers verify with verifyWebhookSignature (constant-time, bounded clock skew).
//
// Delivery: a bounded in-memory queue drained by a small number of workers. Network
// errors, timeouts, 5xx and 429 are retried with exponential backoff and jitter up to
// maxAttempts; any other answer (2xx excepted) is final, since repeating a request the
// receiver rejected cannot succeed. SSRF refusals and bad URLs are final too. The queue
// is in memory on purpose: results themselves only live an hour, and a lost webhook is
// recoverable by the client via GET /v1/results/<id>.

import { createHmac, timingSafeEqual } from 'node:crypto';
import { ImageError } from '../image/types.js';
import { checkUrl, guardedExchange, withDeadline, type Connector, type Resolver } from './safe-fetch.js';

export interface WebhookSenderOptions {
  readonly secret: string;
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
  /** Queues a delivery and returns at once; never throws for delivery problems. */
  send(url: string, payload: object): void;
  readonly counters: Readonly<WebhookCounters>;
  /** Deliveries queued, in flight or waiting for a retry. */
  pending(): number;
  /** Resolves when nothing is queued, in flight or waiting for a retry. */
  idle(): Promise<void>;
  /** Cancels waiting retries and queued deliveries (counted as failed); for shutdown. */
  close(): void;
}

export function signWebhook(secret: string, timestamp: number | string, body: string | Buffer): string {
  const mac = createHmac('sha256', secret);
  mac.update(`${timestamp}.`);
  mac.update(body);
  return `sha256=${mac.digest('hex')}`;
}

/**
 * For receivers: true when `header` is the signature of `body` at `timestamp` and the
 * timestamp is within `toleranceS` seconds of now (either direction, for clock skew).
 */
export function verifyWebhookSignature(
  secret: string,
  timestamp: string | number,
  body: string | Buffer,
  header: string | undefined,
  toleranceS: number,
  nowS: number = Math.floor(Date.now() / 1000),
): boolean {
  if (typeof header !== 'string') return false;
  const ts = typeof timestamp === 'number' ? timestamp : /^\d{1,12}$/.test(timestamp) ? Number(timestamp) : NaN;
  if (!Number.isSafeInteger(ts) || Math.abs(nowS - ts) > toleranceS) return false;
  const expected = Buffer.from(signWebhook(secret, ts, body), 'utf8');
  const given = Buffer.from(header, 'utf8');
  // timingSafeEqual needs equal lengths; a length mismatch leaks nothing secret.
  return given.length === expected.length && timingSafeEqual(given, expected);
}

interface Job {
  readonly url: string;
  readonly body: string;
  attempts: number;
}

type AttemptResult =
  | { kind: 'ok'; status: number }
  | { kind: 'retry' | 'final'; status: number | undefined; error: string; retryAfterMs?: number };

const RESPONSE_CAP = 64 * 1024;

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

  async function attempt(job: Job): Promise<AttemptResult> {
    let url: URL;
    try {
      url = checkUrl(job.url, 'request');
    } catch (e) {
      return { kind: 'final', status: undefined, error: (e as Error).message };
    }
    const ts = Math.floor(Date.now() / 1000);
    try {
      const res = await withDeadline(opts.timeoutMs, (signal) =>
        guardedExchange(
          url,
          {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              'x-sluice-timestamp': String(ts),
              'x-sluice-signature': signWebhook(opts.secret, ts, job.body),
            },
            body: job.body,
          },
          { ...opts, maxBytes: RESPONSE_CAP, readBody: false },
          signal,
        ),
      );
      if (res.status >= 200 && res.status < 300) return { kind: 'ok', status: res.status };
      const retryable = res.status >= 500 || res.status === 429;
      // Honour a receiver's Retry-After (seconds form) as a floor, still capped by maxDelayMs.
      const ra = res.headers['retry-after'];
      const raS = typeof ra === 'string' && /^\d{1,6}$/.test(ra) ? Number(ra) : undefined;
      return {
        kind: retryable ? 'retry' : 'final',
        status: res.status,
        error: `HTTP ${res.status}`,
        ...(raS !== undefined ? { retryAfterMs: raS * 1000 } : {}),
      };
    } catch (e) {
      // The guard's refusals and URL problems will not change on retry; transport trouble may.
      const final = e instanceof ImageError && (e.code === 'forbidden_destination' || e.status === 400);
      return { kind: final ? 'final' : 'retry', status: undefined, error: (e as Error).message };
    }
  }

  function backoff(attempts: number): number {
    // "Equal jitter": at least half the exponential delay, so retries stay spread out
    // even when many deliveries failed at the same moment.
    const exp = Math.min(maxDelayMs, opts.baseDelayMs * 2 ** (attempts - 1));
    return Math.round(exp / 2 + Math.random() * (exp / 2));
  }

  function pump(): void {
    while (!closed && inFlight < concurrency && ready.length > 0) {
      const job = ready.shift()!;
      inFlight++;
      job.attempts++;
      counters.attempts++;
      void attempt(job).then((r) => {
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
          const timer = setTimeout(() => {
            waiting.delete(timer);
            ready.push(job);
            pump();
          }, Math.min(maxDelayMs, Math.max(backoff(job.attempts), r.retryAfterMs ?? 0)));
          waiting.set(timer, job);
        } else {
          finish(job, r);
        }
        pump();
        settleIdle();
      });
    }
  }

  return {
    send(url, payload) {
      if (closed || pending() >= maxQueue) {
        counters.dropped++;
        return;
      }
      ready.push({ url, body: JSON.stringify(payload), attempts: 0 });
      pump();
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
