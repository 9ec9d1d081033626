import type { IncomingHttpHeaders } from 'node:http';

export type Credential = { readonly kind: 'key' | 'jwt'; readonly value: string };

const BEARER = /^bearer\s+(\S+)\s*$/i;
const BASIC = /^basic\s+([A-Za-z0-9+/]+={0,2})\s*$/i;
// Three base64url segments, the first a JSON object ("eyJ" is base64 for '{"').
const JWT_SHAPE = /^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const MAX_CREDENTIAL = 8192;

/**
 * HTTP Basic as the modelled API accepts it (`curl -u KEY:`): the API key is the user
 * name and the password is empty. Anything else in Basic is not a credential, so a
 * client that sent a real password learns it was refused rather than ignored.
 */
function basicKey(b64: string): string | undefined {
  const decoded = Buffer.from(b64, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0 || colon !== decoded.length - 1) return undefined;
  return decoded.slice(0, colon);
}

/**
 * X-API-Key wins over Authorization. Authorization: Bearer (a value shaped like a JWT
 * is one) or Basic with the key as the user name and an empty password.
 */
export function credentialFrom(headers: IncomingHttpHeaders): Credential | undefined {
  const apiKey = headers['x-api-key'];
  if (typeof apiKey === 'string' && apiKey.length > 0 && apiKey.length <= MAX_CREDENTIAL) return { kind: 'key', value: apiKey };
  const auth = headers.authorization;
  if (typeof auth !== 'string' || auth.length > MAX_CREDENTIAL) return undefined;
  const basic = BASIC.exec(auth);
  if (basic !== null) {
    const key = basicKey(basic[1]!);
    return key === undefined ? undefined : { kind: 'key', value: key };
  }
  const m = BEARER.exec(auth);
  if (m === null) return undefined;
  const token = m[1]!;
  return { kind: JWT_SHAPE.test(token) ? 'jwt' : 'key', value: token };
}
