// Standard Webhooks signatures (https://www.standardwebhooks.com), so receivers can use
// any of its libraries instead of code of ours:
//   webhook-id:        msg_<22 base64url chars>, the same on every attempt of one delivery
//   webhook-timestamp: unix seconds of this attempt
//   webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>
//                      v1a,<base64 ed25519 signature of the same>, for receivers that
//                      verify with the customer's public key (whpk_) instead
// Each customer has its own keys (common/webhook-keys/): during a rotation two of each, and
// every delivery then carries one signature per key (space-separated), so a receiver
// holding either key accepts it; a verifier that knows only v1 skips the v1a entries.

import { createHmac, randomBytes, sign, type KeyObject } from 'node:crypto';

/** One customer's signing keys, newest first: the bytes of its `whsec_` keys, and its ed25519 private keys. */
export interface WebhookKeys {
  readonly hmac: readonly Buffer[];
  readonly ed25519: readonly KeyObject[];
}

export function newWebhookId(): string {
  return `msg_${randomBytes(16).toString('base64url')}`;
}

/** The webhook-signature header value: one `v1,<sig>` per secret key, then one `v1a,<sig>` per key pair. */
export function signatureHeader(keys: WebhookKeys, id: string, timestamp: number, body: string): string {
  const content = `${id}.${timestamp}.${body}`;
  return [
    ...keys.hmac.map((key) => `v1,${createHmac('sha256', key).update(content).digest('base64')}`),
    ...keys.ed25519.map((key) => `v1a,${sign(null, Buffer.from(content), key).toString('base64')}`),
  ].join(' ');
}

/** The three headers of one attempt. */
export function signedHeaders(keys: WebhookKeys, id: string, body: string, nowMs: number = Date.now()): Record<string, string> {
  const ts = Math.floor(nowMs / 1000);
  return { 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': signatureHeader(keys, id, ts, body) };
}
