import { createHash, createHmac } from 'node:crypto';

/** The only form in which an API key is stored: SHA-256, or HMAC-SHA256 when a pepper is set. */
export function keyDigest(key: string, pepper: string | undefined): string {
  return pepper === undefined
    ? createHash('sha256').update(key).digest('hex')
    : createHmac('sha256', pepper).update(key).digest('hex');
}
