import { Type } from '@sinclair/typebox';
import { Section, StringEnum } from '../../../common/schema-types.js';

export const StaticKey = Section({
  digest: Type.String({ pattern: '^(sha256:)?[0-9a-f]{64}$', patternErrorMessage: 'must be 64 lower-case hex characters (sha256 of the key)',
    description: 'Lower-case hex SHA-256 (or HMAC-SHA256 with the pepper) of the key, optionally prefixed sha256:.' }),
  customer: Type.String({ minLength: 1, description: 'The customer the key belongs to.' }),
  plan: Type.Optional(Type.String({ minLength: 1, description: "The key's plan (default: the customer's)." })),
  label: Type.Optional(Type.String({ description: 'A note for people (logs and the admin API show it).' })),
}, { description: 'A key in the config: only its digest.' });

export const JwtKey = Section({
  kid: Type.Optional(Type.String({ minLength: 1, description: 'The key id a token names in its header to pick this key.' })),
  secret: Type.Optional(Type.String({ minLength: 1, description: 'HS256 shared secret (utf-8), at least 32 bytes.' })),
  pem: Type.Optional(Type.String({ minLength: 1, description: 'PEM public key: RSA (RS256, 2048 bits or more) or P-256 (ES256).' })),
});

export const Jwt = Section({
  algorithms: Type.Array(StringEnum(['HS256', 'RS256', 'ES256'] as const), { minItems: 1, errorMessage: 'pin at least one algorithm', description: 'The only algorithms a token may use (pinned: alg none or a swapped algorithm is refused).' }),
  issuer: Type.Optional(Type.String({ minLength: 1, description: 'Required iss claim.' })),
  audience: Type.Optional(Type.String({ minLength: 1, description: 'Required aud claim.' })),
  keys: Type.Array(JwtKey, { default: [], description: 'Verification keys in the config (or jwks_url).' }),
  jwks_url: Type.Optional(Type.String({ pattern: '^https?://', patternErrorMessage: 'must be an http(s) URL', description: 'A JWKS document to fetch verification keys from.' })),
  customer_claim: Type.String({ minLength: 1, default: 'sub', description: 'The claim that names the customer.' }),
  plan_claim: Type.String({ minLength: 1, default: 'plan', description: 'The claim that names the plan.' }),
  clock_tolerance_s: Type.Number({ minimum: 0, default: 5, description: 'Leeway for exp and nbf.' }),
}, { description: 'JSON Web Tokens as credentials (Authorization: Bearer), verified with jose.' });

export const Auth = Section({
  pepper: Type.Optional(Type.String({ description: 'HMAC key for key digests (a digest then is HMAC-SHA256, not SHA-256).' })),
  cache_ttl_ms: Type.Integer({ minimum: 0, default: 60000, description: 'How long a found key or verified token is remembered.' }),
  negative_cache_ttl_ms: Type.Integer({ minimum: 0, default: 5000, description: 'How long an unknown key is remembered as unknown.' }),
  stale_if_error_ms: Type.Integer({ minimum: 0, default: 30000, description: "How long past cache_ttl_ms a key's identity is still served while the store cannot be asked." }),
  cache_max: Type.Integer({ minimum: 1, default: 100000, description: 'Entries in the credential cache (least recently used go first).' }),
  keys: Type.Array(StaticKey, { default: [], description: 'API keys kept in the config (more live in Redis, written by the admin API).' }),
  jwt: Type.Optional(Jwt),
}, { default: {}, description: 'Credentials: API keys (stored as digests) and JWTs.' });
