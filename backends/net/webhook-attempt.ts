// One delivery attempt of a webhook, shared by the in-process sender (webhooks.ts) and
// the queue worker (backends/webhooks/worker.ts): the SSRF guard on every attempt, a
// fresh Standard Webhooks signature with the customer's keys as they are at this attempt
// (signingKeysFor), and the verdict on what the answer means.

import { ImageError } from '../image/types.js';
import { checkUrl, fetchWithin, guardedExchange, type GuardOptions } from './safe-fetch.js';
import { signedHeaders, type WebhookKeys } from './webhook-signing.js';

export interface AttemptOptions extends GuardOptions {
  readonly timeoutMs: number;
}

/**
 * ok: delivered. retry: may succeed later (network trouble, 5xx, 408, 425, 429), with the
 * receiver's Retry-After when it sent one on 429/503. final: will never succeed (the
 * guard refused the destination, a bad URL, 410 Gone or another 4xx).
 */
export type AttemptResult =
  | { readonly kind: 'ok'; readonly status: number }
  | { readonly kind: 'retry' | 'final'; readonly status: number | undefined; readonly error: string; readonly retryAfterMs?: number };

// Not read: the answer's body means nothing to the sender.
const RESPONSE_CAP = 64 * 1024;
// 4xx answers that say "not now" rather than "never".
const RETRYABLE_4XX = new Set([408, 425, 429]);
// A Retry-After asking for longer than this is taken as this (a day).
const MAX_RETRY_AFTER_MS = 86_400_000;

export async function attemptWebhook(opts: AttemptOptions, url: string, id: string, body: string, keys: WebhookKeys, nowMs: () => number = Date.now): Promise<AttemptResult> {
  let target: URL;
  try {
    target = checkUrl(url, 'request');
  } catch (e) {
    return { kind: 'final', status: undefined, error: (e as Error).message };
  }
  try {
    const res = await fetchWithin(opts.timeoutMs, (signal) =>
      guardedExchange(
        target,
        { method: 'POST', headers: { 'content-type': 'application/json', ...signedHeaders(keys, id, body, nowMs()) }, body },
        { ...opts, maxBytes: RESPONSE_CAP, readBody: false },
        signal,
      ),
    );
    if (res.status >= 200 && res.status < 300) return { kind: 'ok', status: res.status };
    const retryable = res.status >= 500 || RETRYABLE_4XX.has(res.status);
    const retryAfterMs = res.status === 429 || res.status === 503 ? parseRetryAfter(res.headers['retry-after'], nowMs()) : undefined;
    return {
      kind: retryable ? 'retry' : 'final',
      status: res.status,
      error: `HTTP ${res.status}`,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    };
  } catch (e) {
    // The guard's refusals and URL problems will not change on retry; transport trouble may.
    const final = e instanceof ImageError && (e.code === 'forbidden_destination' || e.status === 400);
    return { kind: final ? 'final' : 'retry', status: undefined, error: (e as Error).message };
  }
}

/** Retry-After in either form (delay-seconds or an HTTP date), in ms from now, capped at a day. */
export function parseRetryAfter(v: string | string[] | undefined, nowMs: number): number | undefined {
  if (typeof v !== 'string') return undefined;
  const t = v.trim();
  let ms: number;
  if (/^\d{1,9}$/.test(t)) ms = Number(t) * 1000;
  else {
    const at = Date.parse(t);
    if (!Number.isFinite(at)) return undefined;
    ms = Math.max(0, at - nowMs);
  }
  return Math.min(ms, MAX_RETRY_AFTER_MS);
}

/** The customer's signing keys now: a keyring that cannot say (store down) makes the attempt a retry, not a delivery signed with nothing. */
export async function signingKeysFor(signingKeys: (customer: string) => Promise<WebhookKeys>, customer: string): Promise<WebhookKeys | AttemptResult> {
  try {
    const keys = await signingKeys(customer);
    if (keys.hmac.length > 0) return keys;
    return { kind: 'retry', status: undefined, error: 'no signing key' };
  } catch (e) {
    return { kind: 'retry', status: undefined, error: `signing keys unavailable: ${(e as Error).message}` };
  }
}

export function isKeys(k: WebhookKeys | AttemptResult): k is WebhookKeys {
  return (k as WebhookKeys).hmac !== undefined;
}
