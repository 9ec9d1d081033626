import { Type } from '@sinclair/typebox';
import { Section, StringEnum } from '../../../common/schema-types.js';
import { ENVIRONMENT_PATTERN } from '../../auth/key-format.js';

/** Client addresses a key may be used from: IPv4 or IPv6 CIDRs (a bare address is /32 or /128). */
export const CidrList = Type.Array(Type.String({ pattern: '^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$', patternErrorMessage: 'must be an address or CIDR like 10.0.0.0/8 or 2001:db8::/32' }), {
  maxItems: 64, description: 'CIDRs the key may be used from (checked before the limits; elsewhere 403). Absent: anywhere.',
});

export const StaticKey = Section({
  digest: Type.String({ pattern: '^(sha256:)?[0-9a-f]{64}$', patternErrorMessage: 'must be 64 lower-case hex characters (sha256 of the key)',
    description: 'Lower-case hex SHA-256 (or HMAC-SHA256 with the pepper) of the key, optionally prefixed sha256:.' }),
  customer: Type.String({ minLength: 1, description: 'The customer the key belongs to.' }),
  plan: Type.Optional(Type.String({ minLength: 1, description: "The key's plan (default: the customer's)." })),
  label: Type.Optional(Type.String({ description: 'A note for people (logs and the admin API show it).' })),
  expires_at: Type.Optional(Type.Integer({ minimum: 0, description: 'Unix ms from which the key is refused (401).' })),
  allow: Type.Optional(CidrList),
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
  key_environment: Type.String({ pattern: ENVIRONMENT_PATTERN, default: 'live', patternErrorMessage: 'must be 1-16 of a-z 0-9',
    description: 'The environment in the keys this gateway mints (`sluice_<environment>_...`); a Sluice key of another environment is refused without a store lookup.' }),
  rotation_grace_s: Type.Integer({ minimum: 0, maximum: 90 * 86400, default: 86400,
    description: 'After POST /admin/keys/{digest}/rotate, how long the old key keeps working (answers then carry Deprecation and Sunset); a rotation may ask for less.' }),
  last_used_flush_ms: Type.Integer({ minimum: 100, maximum: 3_600_000, default: 60000,
    description: "How often each gateway writes its keys' last-used times to the store, all in one batch (never a write per request)." }),
  keys: Type.Array(StaticKey, { default: [], description: 'API keys kept in the config (more live in Redis, written by the admin API).' }),
  jwt: Type.Optional(Jwt),
}, { default: {}, description: 'Credentials: API keys (stored as digests) and JWTs.' });
