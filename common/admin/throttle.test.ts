import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AuthThrottle } from './throttle.js';
import { AdminTokens } from './tokens.js';
import { createHash } from 'node:crypto';

const cfg = { maxFailures: 3, windowMs: 60_000, maxBackoffMs: 8000, maxPeers: 2 };

test('wrong tokens: free up to the limit, then a backoff doubling from 1 s to the cap; a right token resets', () => {
  let now = 1_000_000;
  const t = new AuthThrottle(cfg, () => now);
  for (let i = 0; i < 3; i++) { assert.equal(t.waitMs('a'), 0); t.failed('a'); }
  assert.equal(t.waitMs('a'), 0, 'the limit itself is free');
  t.failed('a');
  assert.equal(t.waitMs('a'), 1000);
  now += 1000;
  assert.equal(t.waitMs('a'), 0);
  const backoffs: number[] = [];
  for (let i = 0; i < 5; i++) { t.failed('a'); backoffs.push(t.waitMs('a')); now += t.waitMs('a'); }
  assert.deepEqual(backoffs, [2000, 4000, 8000, 8000, 8000], 'doubling, capped at maxBackoffMs');
  assert.equal(t.waitMs('b'), 0, 'per peer');
  t.succeeded('a');
  assert.equal(t.waitMs('a'), 0);
  t.failed('a');
  assert.equal(t.waitMs('a'), 0, 'forgiven: counting starts again');
});

test('failures older than the window are forgotten; the peers remembered are bounded', () => {
  let now = 0;
  const t = new AuthThrottle(cfg, () => now);
  for (let i = 0; i < 3; i++) t.failed('a');
  now += 60_001;
  t.failed('a');
  assert.equal(t.waitMs('a'), 0, 'a new window');
  for (let i = 0; i < 4; i++) t.failed('b');
  assert.equal(t.waitMs('b'), 1000);
  t.failed('c');
  t.failed('d');
  assert.equal(t.waitMs('b'), 0, 'maxPeers 2: the least recently seen peer is forgotten');
});

test('tokens: the label of the matching digest, every digest compared', () => {
  const digest = (s: string): string => createHash('sha256').update(s).digest('hex');
  const tokens = new AdminTokens([{ label: 'alice', digest: digest('token-a') }, { label: 'bob', digest: digest('token-b') }]);
  assert.equal(tokens.match('token-a'), 'alice');
  assert.equal(tokens.match('token-b'), 'bob');
  assert.equal(tokens.match('token-c'), undefined);
  assert.equal(tokens.match(digest('token-a')), undefined, 'the digest is not the token');
  assert.equal(tokens.match(''), undefined);
});
