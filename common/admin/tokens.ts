import { createHash, timingSafeEqual } from 'node:crypto';

/** One admin bearer token as the config holds it: a label for the audit log, and the SHA-256 (hex) of the token. */
export interface AdminToken {
  readonly label: string;
  readonly digest: string;
}

/**
 * The admin tokens of one config, ready to check: the presented token is hashed once and
 * compared with every configured digest in constant time, with no early exit, so how long
 * a refusal takes says nothing about how close the guess was or which token it was near.
 */
export class AdminTokens {
  private readonly digests: readonly { readonly label: string; readonly bytes: Buffer }[];

  constructor(tokens: readonly AdminToken[]) {
    this.digests = tokens.map((t) => ({ label: t.label, bytes: Buffer.from(t.digest, 'hex') }));
  }

  get size(): number {
    return this.digests.length;
  }

  /** The label of the token `presented` is, or undefined. */
  match(presented: string): string | undefined {
    const d = createHash('sha256').update(presented).digest();
    let found: string | undefined;
    for (const t of this.digests) {
      const same = timingSafeEqual(d, t.bytes);
      if (same && found === undefined) found = t.label;
    }
    return found;
  }
}

const BEARER = /^bearer\s+(\S+)$/i;

/** The bearer token of an Authorization header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = BEARER.exec(header ?? '');
  return m === null ? undefined : m[1];
}
