// Customers' own webhook keys on the stack `npm start` runs (config/sluice.yaml: memory
// store, two spawned backends delivering in-process), with no secret set by hand: each
// demo customer fetches its key with its own credential, rotates it, and the official
// standardwebhooks verifier accepts its deliveries with its key and refuses them with the
// other customer's.

import assert from 'node:assert/strict';
import { createPublicKey, verify as verifyEd25519 } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Webhook } from 'standardwebhooks';
import { request } from 'undici';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { freePort } from '../../test/harness/ports.js';
import { startReceiver, type Delivery, type Receiver } from '../../test/harness/webhooks.js';

const ROOT = new URL('../../../', import.meta.url);
const CONFIG = readFileSync(fileURLToPath(new URL('config/sluice.yaml', ROOT)), 'utf8');
const PHOTO = readFileSync(fileURLToPath(new URL('node_modules/@vladmandic/face-api/demo/sample1.jpg', ROOT)));

interface KeyBody { key: string; public_key: string | null; created_at: string; previous: { created_at: string; expires_at: string } | null; rotation_overlap_seconds: number }

describe('webhook keys on the default stack (memory store, in-process delivery)', { timeout: 120_000 }, () => {
  let gw: GatewayProcess;
  let rx: Receiver;
  before(async () => {
    rx = await startReceiver();
    const env: NodeJS.ProcessEnv = {
      SLUICE_PORT: '0', SLUICE_ADMIN_PORT: '0',
      SLUICE_BACKEND_PORT_1: String(await freePort()), SLUICE_BACKEND_PORT_2: String(await freePort()),
      // The receiver is on 127.0.0.1, which webhooks may not reach unless allowed.
      SLUICE_BACKEND_FETCH_ALLOW: '127.0.0.1', SLUICE_BACKEND_FACE_WORKERS: '0',
      SLUICE_MASTER_KEY: '', SLUICE_WEBHOOK_KEYS_DIR: undefined,
    };
    gw = await spawnGateway(CONFIG, env);
  });
  after(async () => {
    await gw?.stop('SIGINT');
    await rx?.close();
  });

  const key = async (credential: string, method: 'GET' | 'POST' = 'GET', path = '/v1/webhooks/key', body?: object) => {
    const res = await request(`${gw.url}${path}`, {
      method, headers: { authorization: `Basic ${Buffer.from(`${credential}:`).toString('base64')}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.statusCode, headers: res.headers, body: await res.body.json() as KeyBody & { error: { code: string; message: string } } };
  };
  const hook = async (credential: string, path: string): Promise<Delivery> => {
    const res = await request(`${gw.url}/v1/images`, {
      method: 'POST', body: PHOTO,
      headers: { 'x-api-key': credential, 'x-options': JSON.stringify({ resize: { width: 64 }, format: 'jpeg', webhook: `${rx.url}${path}` }) },
    });
    const text = await res.body.text();
    assert.equal(res.statusCode, 202, text);
    await rx.until((ds) => ds.some((d) => d.path === path));
    return rx.deliveries.find((d) => d.path === path)!;
  };
  const verify = (secret: string, d: Delivery): unknown => new Webhook(secret).verify(d.body, d.headers as Record<string, string>);

  it('says loudly that it generated a development master key', () => {
    assert.ok(gw.lines.some((l) => l.level === 40 && /generated a DEVELOPMENT master key/.test(String(l.msg))), 'a warning at start');
    assert.ok(!gw.lines.some((l) => /master key is not set: GET/.test(String(l.msg))), 'and then has one');
  });

  it('each customer gets its own whsec_ key with its own credential; none without one', async () => {
    const pro = await key('demo-pro');
    const free = await key('demo-free');
    assert.equal(pro.status, 200);
    assert.match(pro.body.key, /^whsec_[A-Za-z0-9+/]{43}=$/);
    assert.equal(pro.body.previous, null);
    assert.equal(pro.body.rotation_overlap_seconds, 86400);
    assert.match(String(pro.headers['ratelimit-policy']), /"pro"/, 'a call like any other, counted by the limits');
    assert.notEqual(pro.body.key, free.body.key);
    assert.equal((await key('demo-pro')).body.key, pro.body.key, 'the same key on every call');
    const anonymous = await request(`${gw.url}/v1/webhooks/key`);
    assert.equal(anonymous.statusCode, 401);
    await anonymous.body.dump();
    const wrongMethod = await key('demo-pro', 'POST');
    assert.equal(wrongMethod.status, 405);
  });

  it("a delivery verifies with its customer's key (standardwebhooks), and not with another customer's", async () => {
    const pro = (await key('demo-pro')).body.key;
    const free = (await key('demo-free')).body.key;
    const d = await hook('demo-pro', '/pro-1');
    assert.equal((verify(pro, d) as { status: string }).status, 'succeeded');
    // v1a: the same content signed with ed25519, checked with the public key alone (node:crypto; the official JS verifier knows v1 only).
    const publicKey = (await key('demo-pro')).body.public_key!;
    const raw = Buffer.from(publicKey.slice('whpk_'.length), 'base64');
    const v1a = String(d.headers['webhook-signature']).split(' ').find((s) => s.startsWith('v1a,'))!.slice(4);
    const content = Buffer.from(`${String(d.headers['webhook-id'])}.${String(d.headers['webhook-timestamp'])}.${d.body}`);
    assert.ok(verifyEd25519(null, content, createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' }), Buffer.from(v1a, 'base64')));
    const otherPublic = Buffer.from((await key('demo-free')).body.public_key!.slice(5), 'base64');
    assert.ok(!verifyEd25519(null, content, createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: otherPublic.toString('base64url') }, format: 'jwk' }), Buffer.from(v1a, 'base64')),
      "another customer's public key does not verify it");
    assert.throws(() => verify(free, d), /signature/i, "demo-free's key must not verify demo-pro's delivery");
    const f = await hook('demo-free', '/free-1');
    verify(free, f);
    assert.throws(() => verify(pro, f), /signature/i);
  });

  it('rotation: both keys sign during the overlap; a rotation without overlap retires the old key at once', async () => {
    const before = (await key('demo-pro')).body.key;
    const rotated = await key('demo-pro', 'POST', '/v1/webhooks/key/rotate');
    assert.equal(rotated.status, 200);
    assert.notEqual(rotated.body.key, before);
    assert.ok(rotated.body.previous !== null);
    const overlapEnds = Date.parse(rotated.body.previous.expires_at) - Date.now();
    assert.ok(Math.abs(overlapEnds - 86_400_000) < 60_000, `the old key signs for 24 h (${overlapEnds} ms)`);
    assert.deepEqual((await key('demo-pro')).body, rotated.body, 'GET shows the rotation state');
    const d = await hook('demo-pro', '/pro-2');
    assert.deepEqual(String(d.headers['webhook-signature']).split(' ').map((s) => s.split(',')[0]), ['v1', 'v1', 'v1a', 'v1a'], 'two keys, each signing (space-separated)');
    verify(rotated.body.key, d);
    verify(before, d);

    assert.equal((await key('demo-pro', 'POST', '/v1/webhooks/key/rotate', { overlap_seconds: 86401 })).status, 400, 'no longer than the configured overlap');
    const leaked = await key('demo-pro', 'POST', '/v1/webhooks/key/rotate', { overlap_seconds: 0 });
    assert.equal(leaked.status, 200);
    assert.equal(leaked.body.previous, null);
    const e = await hook('demo-pro', '/pro-3');
    verify(leaked.body.key, e);
    assert.throws(() => verify(rotated.body.key, e), /signature/i, 'the replaced key no longer signs');
  });
});
