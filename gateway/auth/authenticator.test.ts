import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../config/load.js';
import type { CustomerRecord, KeyRecord, Store } from '../store/types.js';
import { Authenticator, isFailure, type AuthResult } from './authenticator.js';
import { keyDigest } from './digest.js';

// The authenticator's caching rules on an injected clock, with an injected store (the
// store contract suite covers the real ones): how long a found key and an unknown one are
// remembered, that concurrent misses share one lookup, that a revocation is not served,
// and what is served while the store cannot be asked (stale_if_error_ms).
// (auth.api-keys, auth.revoke and auth.stale show the same through gateways on Redis.)

const TTL = 60_000;
const NEGATIVE_TTL = 5000;
const STALE = 30_000;

const config = (staleIfError = STALE) => parseConfig(`
plans: { free: { rate: 5 }, pro: { rate: 100 } }
upstreams: { u: { targets: ["http://127.0.0.1:1"] } }
routes: [{ prefix: /, upstream: u }]
auth:
  cache_ttl_ms: ${TTL}
  negative_cache_ttl_ms: ${NEGATIVE_TTL}
  stale_if_error_ms: ${staleIfError}
  keys: [{ digest: "${keyDigest('static-key', undefined)}", customer: c-static, plan: free }]
`, {});

/** A store holding `keys` (plain key -> customer, plan), counting lookups; `down` makes every call fail. */
class FakeStore {
  lookups = 0;
  down = false;
  readonly keys = new Map<string, KeyRecord>();
  readonly customers = new Map<string, CustomerRecord>();
  private readonly waiting: (() => void)[] = [];
  /** While set, lookups wait until release() (a slow store). */
  hold = false;

  add(key: string, customer: string, plan: string): void {
    const digest = keyDigest(key, undefined);
    this.keys.set(digest, { digest, customer, plan, label: undefined, createdAt: 0 });
  }
  release(): void { for (const w of this.waiting.splice(0)) w(); }

  async findKey(digest: string): Promise<KeyRecord | undefined> {
    this.lookups++;
    if (this.hold) await new Promise<void>((r) => this.waiting.push(r));
    if (this.down) throw new Error('store down');
    return this.keys.get(digest);
  }
  async findCustomer(id: string): Promise<CustomerRecord | undefined> {
    if (this.down) throw new Error('store down');
    return this.customers.get(id);
  }
}

function setup(staleIfError = STALE): { auth: Authenticator; store: FakeStore; clock: { now: number }; check: (key: string) => Promise<AuthResult> } {
  const store = new FakeStore();
  store.add('k-pro', 'c-pro', 'pro');
  const clock = { now: 1_000_000 };
  const auth = new Authenticator(config(staleIfError), store as unknown as Store, () => clock.now);
  return { auth, store, clock, check: async (key) => auth.authenticate({ kind: 'key', value: key }) };
}

/**
 * lru-cache reads the clock at most once a millisecond of real time: let one pass after
 * moving it. An entry is stale once older than its TTL (at TTL + 1 ms, not at TTL).
 */
const clockSeen = (): Promise<void> => new Promise((r) => setTimeout(r, 2));

const customerOf = (r: AuthResult): string => (isFailure(r) ? `failure: ${r.failure}` : r.customer);

describe('authenticator (injected clock, injected store)', () => {
  it('a found key is remembered for cache_ttl_ms, answered without a promise meanwhile, then looked up again', async () => {
    const { auth, store, clock, check } = setup();
    assert.equal(customerOf(await check('k-pro')), 'c-pro');
    clock.now += TTL;
    await clockSeen();
    const hit = auth.authenticate({ kind: 'key', value: 'k-pro' });
    assert.ok(!(hit instanceof Promise), 'a cache hit is synchronous');
    assert.equal(store.lookups, 1);
    clock.now += 1;
    await clockSeen();
    assert.equal(customerOf(await check('k-pro')), 'c-pro');
    assert.equal(store.lookups, 2);
  });

  it('an unknown key is remembered as unknown for negative_cache_ttl_ms only', async () => {
    const { store, clock, check } = setup();
    assert.equal(customerOf(await check('nope')), 'failure: unknown or revoked API key');
    clock.now += NEGATIVE_TTL;
    await clockSeen();
    await check('nope');
    assert.equal(store.lookups, 1);
    store.add('nope', 'c-new', 'free');
    clock.now += 1;
    await clockSeen();
    assert.equal(customerOf(await check('nope')), 'c-new', 'a key created meanwhile works once the negative entry ends');
  });

  it('concurrent misses for one key share one lookup', async () => {
    const { store, check } = setup();
    store.hold = true;
    const all = Promise.all(Array.from({ length: 5 }, () => check('k-pro')));
    await new Promise((r) => setImmediate(r));
    store.release();
    assert.deepEqual((await all).map(customerOf), Array(5).fill('c-pro'));
    assert.equal(store.lookups, 1);
  });

  it('a revocation drops the entry at once, and is never served stale', async () => {
    const { auth, store, clock, check } = setup();
    await check('k-pro');
    store.keys.clear();
    auth.invalidate({ kind: 'key', digest: keyDigest('k-pro', undefined) });
    assert.equal(customerOf(await check('k-pro')), 'failure: unknown or revoked API key');
    store.down = true;
    clock.now += TTL + 1;
    await clockSeen();
    await assert.rejects(check('k-pro'), /store down/, 'nothing stale to fall back on once the unknown answer ends: the store\'s failure stands');
  });

  it('a revocation that arrives while the key is being looked up is not overtaken by the old answer', async () => {
    const { auth, store, check } = setup();
    store.hold = true;
    const pending = check('k-pro');
    await new Promise((r) => setImmediate(r));
    store.keys.clear();
    auth.invalidate({ kind: 'key', digest: keyDigest('k-pro', undefined) });
    store.hold = false;
    store.release();
    assert.equal(customerOf(await pending), 'failure: unknown or revoked API key', 'looked up again, against the updated store');
    assert.equal(store.lookups, 2);
  });

  it('while the store cannot be asked, a stale key is served up to stale_if_error_ms past its TTL, then the failure is', async () => {
    const { store, clock, check } = setup();
    await check('k-pro');
    store.down = true;
    clock.now += TTL + STALE;
    await clockSeen();
    assert.equal(customerOf(await check('k-pro')), 'c-pro', 'stale but young enough');
    const lookups = store.lookups;
    clock.now += 1000;
    await clockSeen();
    assert.equal(customerOf(await check('k-pro')), 'c-pro', 'kept a second before the store is asked again');
    assert.equal(store.lookups, lookups);
    clock.now += 1;
    await clockSeen();
    await assert.rejects(check('k-pro'), /store down/, 'loaded longer ago than TTL + stale_if_error_ms');
  });

  it('stale_if_error_ms 0 serves nothing the store has not confirmed', async () => {
    const { store, clock, check } = setup(0);
    await check('k-pro');
    store.down = true;
    clock.now += TTL + 1;
    await clockSeen();
    await assert.rejects(check('k-pro'), /store down/);
  });

  it('a key from the config needs no key lookup; while the store cannot give its customer, the config\'s identity is served, and asked again a second later', async () => {
    const { store, clock, check } = setup();
    store.down = true;
    assert.equal(customerOf(await check('static-key')), 'c-static');
    assert.equal(store.lookups, 0, 'the config knows the key');
    store.down = false;
    store.customers.set('c-static', { id: 'c-static', plan: 'pro', overrides: { rate: 7 } });
    clock.now += 1000;
    await clockSeen();
    const meanwhile = await check('static-key');
    assert.equal(isFailure(meanwhile) ? 0 : meanwhile.policy.rate, 5, 'the config\'s identity: plan free as it is');
    clock.now += 1;
    await clockSeen();
    const later = await check('static-key');
    assert.equal(isFailure(later) ? 0 : later.policy.rate, 7, 'looked up again: the stored customer\'s override applies');
    const { store: strictStore, check: strict } = setup(0);
    strictStore.down = true;
    await assert.rejects(strict('static-key'), /store down/, 'stale_if_error_ms 0: not even the config\'s identity');
  });
});
