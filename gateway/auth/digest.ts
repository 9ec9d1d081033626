import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** The only form in which an API key is stored: SHA-256, or HMAC-SHA256 when a pepper is set. */
export function keyDigest(key: string, pepper: string | undefined): string {
  return pepper === undefined
    ? createHash('sha256').update(key).digest('hex')
    : createHmac('sha256', pepper).update(key).digest('hex');
}

/** Constant-time equality of two hex digests of the same length. */
export function digestsEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  return timingSafeEqual(Buffer.from(a, 'latin1'), Buffer.from(b, 'latin1'));
}
