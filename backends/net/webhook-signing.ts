// Standard Webhooks signatures (https://www.standardwebhooks.com), so receivers can use
// any of its libraries instead of code of ours:
//   webhook-id:        msg_<22 base64url chars>, the same on every attempt of one delivery
//   webhook-timestamp: unix seconds of this attempt
//   webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>
// Each customer has its own keys (common/webhook-keys/): during a rotation two, and every
// delivery then carries one signature per key (space-separated), so a receiver holding
// either key accepts it.

import { createHmac, randomBytes } from 'node:crypto';

/** One customer's signing keys, newest first (the bytes of their `whsec_<base64>` forms). */
export type WebhookKeys = readonly Buffer[];

export function newWebhookId(): string {
  return `msg_${randomBytes(16).toString('base64url')}`;
}

/** The webhook-signature header value: one `v1,<sig>` per key. */
export function signatureHeader(keys: WebhookKeys, id: string, timestamp: number, body: string): string {
  return keys.map((key) => `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`).join(' ');
}

/** The three headers of one attempt. */
export function signedHeaders(keys: WebhookKeys, id: string, body: string, nowMs: number = Date.now()): Record<string, string> {
  const ts = Math.floor(nowMs / 1000);
  return { 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': signatureHeader(keys, id, ts, body) };
}
