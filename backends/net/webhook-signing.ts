// Standard Webhooks signatures (https://www.standardwebhooks.com), so receivers can use
// any of its libraries instead of code of ours:
//   webhook-id:        msg_<22 base64url chars>, the same on every attempt of one delivery
//   webhook-timestamp: unix seconds of this attempt
//   webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>
// During a rotation the secret holds two keys and every delivery carries one signature
// per key (space-separated), so receivers holding either key accept it.

import { createHmac, randomBytes } from 'node:crypto';

/** The signing keys, newest first, from `whsec_<base64>` secrets separated by spaces. */
export type WebhookKeys = readonly Buffer[];

// Standard Webhooks asks for 24 to 64 bytes of key; fewer than 16 is guessable.
const MIN_KEY_BYTES = 16;
const MAX_KEYS = 2;

/** Parses SLUICE_WEBHOOK_SECRET; throws with a message that says what is wrong (never the secret). */
export function parseWebhookSecret(text: string): WebhookKeys {
  const parts = text.trim().split(/\s+/).filter((p) => p !== '');
  if (parts.length === 0) throw new Error('is empty');
  if (parts.length > MAX_KEYS) throw new Error(`holds ${parts.length} secrets; at most ${MAX_KEYS} (the new and the old one while rotating)`);
  return parts.map((p, i) => {
    const m = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(p);
    if (m === null) throw new Error(`secret ${i + 1} is not whsec_<base64>`);
    const key = Buffer.from(m[1]!, 'base64');
    if (key.length < MIN_KEY_BYTES) throw new Error(`secret ${i + 1} decodes to ${key.length} bytes; at least ${MIN_KEY_BYTES}`);
    return key;
  });
}

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
