import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from './errors.js';
import { parseStoreSection, storeConfigOf } from './store-config.js';

// The store section as backends read it: from a gateway config file (only that
// section), or from fields given on a command line.

function errorsOf(f: () => unknown): string[] {
  try {
    f();
  } catch (err) {
    if (err instanceof ConfigError) return [...err.errors];
    throw err;
  }
  assert.fail('accepted');
}

describe('store config for backends', () => {
  it('reads only the store section of a gateway config, with ${ENV} and defaults', () => {
    const s = parseStoreSection('server: { prot: 1 }\nroutes: nonsense\nstore:\n  kind: redis\n  url: ${REDIS_URL}\n  tls: true\n', { REDIS_URL: 'rediss://cache:6380' });
    assert.equal(s.url, 'rediss://cache:6380');
    assert.deepEqual(s.tls, { reject_unauthorized: true });
    assert.equal(s.prefix, 'sluice:');
    assert.deepEqual(s.lease, { enabled: true, target_ms: 75, max_share: 0.1 });
    assert.ok(Object.isFrozen(s));
  });

  it('refuses a memory store and names every problem, env ones first', () => {
    assert.deepEqual(errorsOf(() => parseStoreSection('store: { kind: memory }\n', {})), ['store.kind: must be redis: backends register in the Redis the gateways share']);
    assert.deepEqual(errorsOf(() => parseStoreSection('store:\n  kind: redis\n  url: ${NOPE}\n  timeout_ms: 0\n  colour: red\n', {})), [
      'store.url: environment variable NOPE is not set and ${NOPE} has no default',
      'store.colour: unknown field (expected one of: kind, mode, url, sentinels, sentinel_name, nodes, password, tls, timeout_ms, late_grace_ms, failure_policy, prefix, probe_interval_ms, breaker, fleet_floor, lease)',
      'store.timeout_ms: must be >= 1, got 0',
      'store.url: is required when kind is redis',
    ]);
    assert.deepEqual(errorsOf(() => parseStoreSection('- not a mapping\n', {})), ['(root): must be a mapping']);
  });

  it('storeConfigOf fills every other field with the gateway default, and checks what it is given', () => {
    const s = storeConfigOf({ kind: 'redis', url: 'redis://127.0.0.1:6379', prefix: 'p:' });
    assert.equal(s.timeout_ms, 50);
    assert.equal(s.mode, 'standalone');
    assert.equal(s.prefix, 'p:');
    assert.deepEqual(errorsOf(() => storeConfigOf({ kind: 'redis', url: 'http://x' })), ['store.url: must start with redis:// or rediss://, got "http://x"']);
  });
});
