import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPublicKey, sign, verify } from 'node:crypto';
import { after, test } from 'node:test';
import { WebhookKeyring } from './keyring.js';
import { masterKeysFromEnv, newMasterKeyText, parseMasterKey, seal, unseal } from './master-key.js';
import { DirKeyringStorage } from './storage.js';

// The keyring's rules on an injected clock, over the directory storage the memory-store
// stack uses (the Redis storage runs in the gateway's and sluice-webhooks' tests).

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
function storage(): { dir: string; s: DirKeyringStorage } {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-keyring-'));
  dirs.push(dir);
  return { dir, s: new DirKeyringStorage(dir) };
}
const M1 = parseMasterKey(newMasterKeyText());
const M2 = parseMasterKey(newMasterKeyText());

test('a customer key is made once, whoever asks first; each customer has its own', async () => {
  const { s } = storage();
  const a = new WebhookKeyring(s, { current: M1, previous: [] });
  const b = new WebhookKeyring(s, { current: M1, previous: [] });
  const [x, y] = await Promise.all([a.state('acme'), b.state('acme')]);
  assert.equal(x.key, y.key, 'two processes asking at once agree on one key');
  assert.match(x.key, /^whsec_[A-Za-z0-9+/]{43}=$/);
  assert.notEqual((await a.state('globex')).key, x.key);
  assert.deepEqual((await a.signingKeys('acme')).hmac, [Buffer.from(x.key.slice(6), 'base64')]);
  assert.match(x.publicKey!, /^whpk_[A-Za-z0-9+/]{43}=$/);
  const [pair] = (await a.signingKeys('acme')).ed25519;
  const signature = sign(null, Buffer.from('m'), pair!);
  const raw = Buffer.from(x.publicKey!.slice(5), 'base64');
  const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
  assert.ok(verify(null, Buffer.from('m'), publicKey, signature), 'the whpk_ key verifies what the private key signs');
});

test('rotation: the old key signs beside the new one until the overlap ends; at most two sign', async () => {
  let now = 1_000_000;
  const { s } = storage();
  const k = new WebhookKeyring(s, { current: M1, previous: [] }, () => now);
  const first = await k.state('acme');
  const second = await k.rotate('acme', 60_000);
  assert.deepEqual(second.previous, { createdAt: first.createdAt, expiresAt: now + 60_000 });
  const bytes = (w: string): Buffer => Buffer.from(w.slice(6), 'base64');
  assert.deepEqual((await k.signingKeys('acme')).hmac, [bytes(second.key), bytes(first.key)], 'newest first');
  assert.equal((await k.signingKeys('acme')).ed25519.length, 2, 'a key pair beside each secret');
  now += 30_000;
  const third = await k.rotate('acme', 60_000);
  assert.deepEqual((await k.signingKeys('acme')).hmac, [bytes(third.key), bytes(second.key)], 'the oldest retired by the second rotation');
  now += 60_000;
  assert.deepEqual((await k.signingKeys('acme')).hmac, [bytes(third.key)], 'the overlap is over');
  assert.equal((await k.state('acme')).previous, undefined);
  const fourth = await k.rotate('acme', 0);
  assert.deepEqual((await k.signingKeys('acme')).hmac, [bytes(fourth.key)], 'no overlap: the old key stops at once');
});

test('at rest: sealed under the master key and bound to its customer; a rewrap moves every key to the new master key', async () => {
  const { dir, s } = storage();
  const old = new WebhookKeyring(s, { current: M1, previous: [] });
  const acme = (await old.state('acme')).key;
  await old.state('globex');
  const files = readdirSync(dir).map((f) => readFileSync(join(dir, f), 'utf8')).join('\n');
  assert.ok(!files.includes(acme.slice(6)), 'the key itself is not in the files');
  assert.throws(() => unseal({ current: M1, previous: [] }, seal(M1, Buffer.from('x'), 'acme'), 'globex'), /auth/i, 'sealed for one customer, it does not open for another');

  const rotating = new WebhookKeyring(s, { current: M2, previous: [M1] });
  assert.equal((await rotating.state('acme')).key, acme, 'read under the previous key');
  assert.deepEqual(await rotating.rewrap(), { rewrapped: 2, current: 0 });
  assert.deepEqual(await rotating.rewrap(), { rewrapped: 0, current: 2 });
  assert.equal((await new WebhookKeyring(s, { current: M2, previous: [] }).state('acme')).key, acme, 'the new key alone opens it');
  await assert.rejects(new WebhookKeyring(s, { current: M1, previous: [] }).state('acme'), /does not have/, 'the old key alone no longer does');
});

test('SLUICE_MASTER_KEY: 32 bytes in base64 or hex; errors name the variable, never the value', () => {
  assert.equal(masterKeysFromEnv({}), undefined);
  const text = newMasterKeyText();
  const hex = Buffer.from(text, 'base64').toString('hex');
  const keys = masterKeysFromEnv({ SLUICE_MASTER_KEY: text, SLUICE_MASTER_KEY_PREVIOUS: ` ${hex} ` })!;
  assert.deepEqual(keys.previous[0]!.key, keys.current.key);
  assert.equal(keys.current.id, keys.previous[0]!.id, 'the id follows the key, not its spelling');
  assert.match(keys.current.id, /^[0-9a-f]{8}$/);
  assert.throws(() => masterKeysFromEnv({ SLUICE_MASTER_KEY: 'dG9vLXNob3J0' }), (e: Error) => /^SLUICE_MASTER_KEY: must be 32 bytes/.test(e.message) && !e.message.includes('dG9vLXNob3J0'));
  assert.throws(() => masterKeysFromEnv({ SLUICE_MASTER_KEY: text, SLUICE_MASTER_KEY_PREVIOUS: 'nope' }), /SLUICE_MASTER_KEY_PREVIOUS \(key 1\)/);
});
