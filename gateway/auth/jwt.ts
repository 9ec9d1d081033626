import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import type { JwtConfig } from '../config/types.js';

export interface JwtClaims {
  readonly customer: string;
  readonly plan: string | undefined;
  /** Seconds since the epoch, when the token stops being valid. */
  readonly exp: number | undefined;
}

export class JwtRejected extends Error {}

/**
 * Verifies bearer JWTs with jose: algorithms pinned from config (a token cannot pick
 * its own, so no "none" and no HS/RS confusion), exp/nbf checked with a small clock
 * tolerance, iss/aud when configured.
 */
export class JwtVerifier {
  private readonly getKey: JWTVerifyGetKey;

  constructor(private readonly cfg: JwtConfig) {
    this.getKey = cfg.jwks_url !== undefined
      ? createRemoteJWKSet(new URL(cfg.jwks_url), { timeoutDuration: 2000, cooldownDuration: 30000 })
      : localKeys(cfg);
  }

  async verify(token: string): Promise<JwtClaims> {
    try {
      const { payload } = await jwtVerify(token, this.getKey, {
        algorithms: [...this.cfg.algorithms],
        issuer: this.cfg.issuer,
        audience: this.cfg.audience,
        clockTolerance: this.cfg.clock_tolerance_s,
      });
      const customer = payload[this.cfg.customer_claim];
      if (typeof customer !== 'string' || customer === '') throw new JwtRejected(`token has no ${this.cfg.customer_claim} claim`);
      const plan = payload[this.cfg.plan_claim];
      return { customer, plan: typeof plan === 'string' ? plan : undefined, exp: payload.exp };
    } catch (err) {
      if (err instanceof JwtRejected) throw err;
      if (err instanceof joseErrors.JWTExpired) throw new JwtRejected('token expired');
      if (err instanceof joseErrors.JWTClaimValidationFailed) throw new JwtRejected(`token claim ${err.claim} is not valid`);
      if (err instanceof joseErrors.JOSEAlgNotAllowed) throw new JwtRejected('token algorithm not allowed');
      if (!isVerdictOnToken(err)) throw err;
      throw new JwtRejected('token signature or format is not valid');
    }
  }
}

/**
 * True when jose judged the token itself. Failing to get the keys (JWKS unreachable,
 * non-200, bad JSON, timeout) says nothing about the token: it must not become a 401
 * that is then cached as a refusal, so it propagates and the auth stage answers 503.
 */
function isVerdictOnToken(err: unknown): boolean {
  if (!(err instanceof joseErrors.JOSEError)) return false;
  return !(err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid || err.code === joseErrors.JOSEError.code);
}

function localKeys(cfg: JwtConfig): JWTVerifyGetKey {
  const keys: { kid: string | undefined; key: KeyObject }[] = cfg.keys.map((k) => ({
    kid: k.kid,
    key: k.secret !== undefined ? createSecretKey(Buffer.from(k.secret, 'utf8')) : createPublicKey(k.pem!),
  }));
  return async (header) => {
    const byKid = header.kid === undefined ? keys : keys.filter((k) => k.kid === header.kid);
    const alg = header.alg;
    const match = byKid.find((k) => keyFits(k.key, alg));
    if (match === undefined) throw new joseErrors.JWKSNoMatchingKey();
    return match.key;
  };
}

function keyFits(key: KeyObject, alg: string | undefined): boolean {
  if (alg === 'HS256') return key.type === 'secret';
  if (alg === 'RS256') return key.asymmetricKeyType === 'rsa';
  if (alg === 'ES256') return key.asymmetricKeyType === 'ec';
  return false;
}

