import { Type } from '@sinclair/typebox';
import { Section, StringEnum } from '../../../common/schema-types.js';

export const StaticKey = Section({
  digest: Type.String({ pattern: '^(sha256:)?[0-9a-f]{64}$', patternErrorMessage: 'must be 64 lower-case hex characters (sha256 of the key)',
    description: 'Lower-case hex SHA-256 (or HMAC-SHA256 with the pepper) of the key, optionally prefixed sha256:.' }),
  customer: Type.String({ minLength: 1 }),
  plan: Type.Optional(Type.String({ minLength: 1 })),
  label: Type.Optional(Type.String()),
});

export const JwtKey = Section({
  kid: Type.Optional(Type.String({ minLength: 1 })),
  secret: Type.Optional(Type.String({ minLength: 1, description: 'HS256 shared secret (utf-8), at least 32 bytes.' })),
  pem: Type.Optional(Type.String({ minLength: 1, description: 'PEM public key: RSA (RS256, 2048 bits or more) or P-256 (ES256).' })),
});

export const Jwt = Section({
  algorithms: Type.Array(StringEnum(['HS256', 'RS256', 'ES256'] as const), { minItems: 1, errorMessage: 'pin at least one algorithm' }),
  issuer: Type.Optional(Type.String({ minLength: 1 })),
  audience: Type.Optional(Type.String({ minLength: 1 })),
  keys: Type.Array(JwtKey, { default: [] }),
  jwks_url: Type.Optional(Type.String({ pattern: '^https?://', patternErrorMessage: 'must be an http(s) URL' })),
  customer_claim: Type.String({ minLength: 1, default: 'sub' }),
  plan_claim: Type.String({ minLength: 1, default: 'plan' }),
  clock_tolerance_s: Type.Number({ minimum: 0, default: 5 }),
});

export const Auth = Section({
  pepper: Type.Optional(Type.String({ description: 'HMAC key for key digests (a digest then is HMAC-SHA256, not SHA-256).' })),
  cache_ttl_ms: Type.Integer({ minimum: 0, default: 60000 }),
  negative_cache_ttl_ms: Type.Integer({ minimum: 0, default: 5000 }),
  stale_if_error_ms: Type.Integer({ minimum: 0, default: 30000, description: "How long past cache_ttl_ms a key's identity is still served while the store cannot be asked." }),
  cache_max: Type.Integer({ minimum: 1, default: 100000 }),
  keys: Type.Array(StaticKey, { default: [] }),
  jwt: Type.Optional(Jwt),
}, { default: {} });
