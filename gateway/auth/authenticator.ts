import { LRUCache } from 'lru-cache';
import type { SluiceConfig, StaticKeyConfig } from '../config/types.js';
import type { CustomerRecord, Invalidation, KeyRecord, Store } from '../store/types.js';
import type { Credential } from './credential.js';
import { digestsEqual } from '../../common/digest.js';
import { keyDigest } from './digest.js';
import { allowList } from './allowlist.js';
import { buildIdentity, type Identity, type KeyTerms } from './identity.js';
import { checkKeyFormat } from './key-format.js';
import { JwtRejected, JwtVerifier } from './jwt.js';

/** Why a credential was refused; cached like an identity so floods of bad keys stay cheap. */
export interface AuthFailure {
  readonly failure: string;
}

export type AuthResult = Identity | AuthFailure;

export function isFailure(r: AuthResult): r is AuthFailure {
  return (r as AuthFailure).failure !== undefined;
}

/** How long a stale identity served because the store failed is trusted before the store is asked again. */
const STALE_RETRY_MS = 1000;

const monotonicNow = (): number => performance.now();

const UNKNOWN_KEY: AuthFailure = Object.freeze({ failure: 'unknown or revoked API key' });
const BAD_CHECKSUM: AuthFailure = Object.freeze({ failure: 'malformed API key: its checksum does not match (a typo, or a truncated copy)' });

/** Rotated or expired: when it ended, why, and the Deprecation/Sunset headers of a rotated key still in its grace. */
function keyTerms(record: KeyRecord): KeyTerms {
  const expires = record.expiresAt ?? Infinity;
  const grace = record.graceUntil ?? Infinity;
  const headers: string[] = [];
  if (record.rotatedAt !== undefined) {
    // RFC 9745: the moment the key was deprecated, as a structured-field date; RFC 8594: when it stops working.
    headers.push('deprecation', `@${Math.floor(record.rotatedAt / 1000)}`);
    if (grace !== Infinity) headers.push('sunset', new Date(grace).toUTCString());
  }
  return Object.freeze({
    digest: record.digest,
    validUntil: Math.min(expires, grace),
    endMessage: grace < expires ? 'API key was rotated and its grace period has ended' : 'API key expired',
    headers: Object.freeze(headers),
    allow: record.allow === undefined || record.allow.length === 0 ? undefined : allowList(record.allow),
  });
}

/**
 * Turns a credential into an Identity. Lookups are cached (positive for cache_ttl_ms,
 * negative for negative_cache_ttl_ms) and concurrent misses for one key share one
 * store call; a revocation published on the store drops the entry everywhere.
 *
 * An API key's identity that has gone stale (its TTL ran out, or the invalidation
 * channel reconnected and may have missed messages) is kept, not dropped: if the store
 * cannot be asked, it is served for up to auth.stale_if_error_ms more, as Kong's
 * resurrect_ttl does. Otherwise every customer would get 503 during a Redis failover
 * that the limits' failure policy exists to ride out. A revoked key is deleted, never
 * stale, so it is not resurrected. JWT identities are not kept: a token may expire.
 */
export class Authenticator {
  private readonly staticKeys: ReadonlyMap<string, StaticKeyConfig>;
  private readonly cache: LRUCache<string, AuthResult>;
  private readonly jwt: JwtVerifier | undefined;
  /** Bumped by every invalidation; tells a lookup that failed because it was dropped mid-flight. */
  private generation = 0;
  /** When each key identity was loaded from the store, to bound how long it is served stale. */
  private readonly loadedAt = new WeakMap<Identity, number>();
  private readonly otherEnvironment: AuthFailure;

  /** `now`: the clock TTLs and staleness are measured on (a monotonic one; a token's `exp` is read on the wall clock). */
  constructor(private readonly cfg: SluiceConfig, private readonly store: Store, private readonly now: () => number = monotonicNow) {
    this.staticKeys = new Map(cfg.auth.keys.map((k) => [k.digest, k]));
    this.otherEnvironment = Object.freeze({ failure: `this API key is for another environment than this gateway's (${cfg.auth.key_environment})` });
    this.jwt = cfg.auth.jwt === undefined ? undefined : new JwtVerifier(cfg.auth.jwt);
    this.cache = new LRUCache<string, AuthResult>({
      max: cfg.auth.cache_max,
      ttl: Math.max(1, cfg.auth.cache_ttl_ms),
      ttlAutopurge: false,
      perf: { now },
      // Keep stale entries (and the entry whose refresh failed) as the fallback above.
      noDeleteOnStaleGet: true,
      noDeleteOnFetchRejection: true,
      fetchMethod: (cacheKey, _stale, { options }) => this.load(cacheKey, options),
    });
  }

  /** Synchronous on a cache hit; a promise only when the store or a JWT must be consulted. */
  authenticate(cred: Credential): AuthResult | Promise<AuthResult> {
    const cacheKey = cred.kind === 'key' ? `k${keyDigest(cred.value, this.cfg.auth.pepper)}` : `j${cred.value}`;
    const hit = this.cache.get(cacheKey);
    if (hit !== undefined) return hit;
    if (cred.kind === 'key') {
      // A Sluice-format key that cannot be one of ours is refused before the store is asked.
      const format = checkKeyFormat(cred.value, this.cfg.auth.key_environment);
      if (format === 'bad_checksum') return BAD_CHECKSUM;
      if (format === 'other_environment') return this.otherEnvironment;
    }
    return this.fetch(cacheKey, 0);
  }

  invalidate(msg: Invalidation): void {
    if (msg.kind === 'denial') return;
    this.generation++;
    if (msg.kind === 'key') this.cache.delete(`k${msg.digest}`);
    else if (msg.id === '*') this.markAllStale();
    else this.cache.clear();
  }

  /**
   * The invalidation channel reconnected: every entry must be looked up again, but stays
   * as the fallback for a store that is still failing over. (lru-cache has no "expire
   * now"; a 1 ms TTL is the closest.)
   */
  private markAllStale(): void {
    for (const k of [...this.cache.keys()]) {
      const v = this.cache.peek(k, { allowStale: true });
      if (v !== undefined) this.cache.set(k, v, { ttl: 1 });
    }
  }

  /**
   * An invalidation arriving while a lookup is in flight aborts it (so a pre-revocation
   * answer is never cached) and rejects every caller waiting on it. Those callers did
   * nothing wrong: look again, now against the updated store. Bounded, so a storm of
   * invalidations ends in the store-unavailable answer rather than a loop.
   */
  private fetch(cacheKey: string, attempt: number): Promise<AuthResult> {
    const generation = this.generation;
    return this.cache.fetch(cacheKey).then((r) => r ?? UNKNOWN_KEY, (err: unknown) => {
      if (this.generation !== generation && attempt < 3) return this.fetch(cacheKey, attempt + 1);
      const stale = this.staleFallback(cacheKey);
      if (stale === undefined) throw err;
      return stale;
    });
  }

  /**
   * The stale identity of an API key, if it is young enough; it is then kept for a short
   * while so that requests do not each wait the store timeout for a store that is down.
   */
  private staleFallback(cacheKey: string): Identity | undefined {
    const stale = this.cache.peek(cacheKey, { allowStale: true });
    if (stale === undefined || isFailure(stale)) return undefined;
    const loaded = this.loadedAt.get(stale);
    if (loaded === undefined || this.now() - loaded > this.cfg.auth.cache_ttl_ms + this.cfg.auth.stale_if_error_ms) return undefined;
    this.cache.set(cacheKey, stale, { ttl: STALE_RETRY_MS });
    return stale;
  }

  private async load(cacheKey: string, options: { ttl?: number }): Promise<AuthResult> {
    const result = cacheKey.charCodeAt(0) === 107 /* k */
      ? await this.loadKey(cacheKey.slice(1), options)
      : await this.loadJwt(cacheKey.slice(1), options);
    if (isFailure(result)) options.ttl = Math.max(1, this.cfg.auth.negative_cache_ttl_ms);
    return result;
  }

  private async loadKey(digest: string, options: { ttl?: number }): Promise<AuthResult> {
    const fromConfig = this.staticKeys.get(digest);
    const record: KeyRecord | undefined = fromConfig !== undefined
      ? {
        digest: fromConfig.digest, customer: fromConfig.customer, plan: fromConfig.plan, label: fromConfig.label, createdAt: 0,
        expiresAt: fromConfig.expires_at, allow: fromConfig.allow,
      }
      : await this.store.findKey(digest);
    // The map or store found the record by its digest; confirm in constant time anyway,
    // so no code path compares secrets with an early-exit ===.
    if (record === undefined || !digestsEqual(record.digest, digest)) return UNKNOWN_KEY;
    const terms = keyTerms(record);
    if (Date.now() >= terms.validUntil) return { failure: terms.endMessage };
    let stored: CustomerRecord | undefined;
    try {
      stored = await this.store.findCustomer(record.customer);
    } catch (err) {
      // A key from the config is known without the store; only its customer's stored
      // overrides are not. While the store cannot say, it gets the config's identity
      // (asked again a second later), so a gateway that starts during a Redis outage
      // follows the limits' failure policy instead of refusing every customer.
      // stale_if_error_ms: 0 asks for no identity the store has not confirmed: none then.
      if (fromConfig === undefined || this.cfg.auth.stale_if_error_ms === 0) throw err;
      options.ttl = STALE_RETRY_MS;
      return this.identityOf(record.customer, record.plan, digest, undefined, terms);
    }
    const identity = this.identityOf(record.customer, record.plan, digest, stored, terms);
    if (!isFailure(identity)) this.loadedAt.set(identity, this.now());
    return identity;
  }

  private async loadJwt(token: string, options: { ttl?: number }): Promise<AuthResult> {
    if (this.jwt === undefined) return { failure: 'JWT bearer tokens are not enabled' };
    try {
      const claims = await this.jwt.verify(token);
      if (claims.exp !== undefined) {
        // Never serve a cached token past its own expiry.
        options.ttl = Math.max(1, Math.min(this.cfg.auth.cache_ttl_ms, claims.exp * 1000 - Date.now()));
      }
      return this.identityOf(claims.customer, claims.plan, undefined, await this.store.findCustomer(claims.customer));
    } catch (err) {
      if (err instanceof JwtRejected) return { failure: err.message };
      throw err;
    }
  }

  private identityOf(customer: string, planName: string | undefined, digest: string | undefined, stored: CustomerRecord | undefined, key?: KeyTerms): AuthResult {
    const identity = buildIdentity({
      customer,
      planName,
      keyDigest: digest,
      configCustomer: this.cfg.customers.get(customer),
      storedCustomer: stored,
      key,
    }, this.cfg.plans, this.cfg.store.failure_policy);
    return identity ?? { failure: `no valid plan for customer ${customer}` };
  }
}
