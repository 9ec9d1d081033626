import { createHmac, hash } from 'node:crypto';

/**
 * The only form in which an API key is stored: SHA-256, or HMAC-SHA256 when a pepper is
 * set. Computed for every request that sends a key: crypto.hash is the one-shot form, a
 * third of createHash().update().digest()'s cost (no Hash object per call).
 */
export function keyDigest(key: string, pepper: string | undefined): string {
  return pepper === undefined ? hash('sha256', key, 'hex') : createHmac('sha256', pepper).update(key).digest('hex');
}
