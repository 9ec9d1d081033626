import type { IncomingHttpHeaders } from 'node:http';

export type Credential = { readonly kind: 'key' | 'jwt'; readonly value: string };

const BEARER = /^bearer\s+(\S+)\s*$/i;
// Three base64url segments, the first a JSON object ("eyJ" is base64 for '{"').
const JWT_SHAPE = /^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const MAX_CREDENTIAL = 8192;

/** X-API-Key wins over Authorization: Bearer; a bearer value shaped like a JWT is one. */
export function credentialFrom(headers: IncomingHttpHeaders): Credential | undefined {
  const apiKey = headers['x-api-key'];
  if (typeof apiKey === 'string' && apiKey.length > 0 && apiKey.length <= MAX_CREDENTIAL) return { kind: 'key', value: apiKey };
  const auth = headers.authorization;
  if (typeof auth !== 'string' || auth.length > MAX_CREDENTIAL) return undefined;
  const m = BEARER.exec(auth);
  if (m === null) return undefined;
  const token = m[1]!;
  return { kind: JWT_SHAPE.test(token) ? 'jwt' : 'key', value: token };
}
