// Customers' webhook keys on a fleet: a gateway on a real Redis hands each customer its
// key, a real sluice-backend enqueues (--webhook-redis), a real sluice-webhooks signs each
// delivery with the key of the customer it belongs to. The keys are at rest only sealed
// (AES-256-GCM) under SLUICE_MASTER_KEY, and the master key rotates without changing any
// customer's key: restart with the new key and the old one as previous, rewrap, drop it.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { Webhook } from 'standardwebhooks';
import { request } from 'undici';
import { admin, createKey } from '../../test/harness/admin.js';
import { testConfig } from '../../test/harness/config.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { startRedis, type RedisProcess } from '../../test/harness/redis.js';
import {
  newMasterKey, spawnImageBackend, spawnWebhooks, startReceiver, type BackendProcess, type Delivery, type Receiver, type WebhooksProcess,
} from '../../test/harness/webhooks.js';

const PHOTO = readFileSync(fileURLToPath(new URL('../../../node_modules/@vladmandic/face-api/demo/sample1.jpg', import.meta.url)));
const M1 = newMasterKey();
const M2 = newMasterKey();

describe('webhook keys on Redis, delivered by sluice-webhooks', { timeout: 120_000 }, () => {
  let redis: RedisProcess;
  let rc: Redis;
  let rx: Receiver;
  let backend: BackendProcess;
  let worker: WebhooksProcess;
  let gw: GatewayProcess;
  const keys: Record<string, string> = {};
  const config = () => testConfig({ upstreams: [backend.url], store: { kind: 'redis', url: redis.url }, plans: { test: { rate: 1000, burst: 1000, max_body_bytes: 10_000_000 } } });

  before(async () => {
    redis = await startRedis();
    rc = new Redis(redis.url);
    rx = await startReceiver();
    backend = await spawnImageBackend(['--webhook-redis', redis.url]);
    worker = await spawnWebhooks(redis.url, [], { SLUICE_MASTER_KEY: M1 });
    gw = await spawnGateway(config(), { SLUICE_MASTER_KEY: M1 });
    for (const c of ['acme', 'globex']) keys[c] = (await createKey(gw.adminUrl, c, 'test')).key;
  });
  after(async () => {
    await gw?.stop();
    await worker?.stop();
    await backend?.stop();
    await rx?.close();
    rc?.disconnect();
    await redis?.stop();
  });

  const webhookKey = async (g: GatewayProcess, customer: string): Promise<{ status: number; body: any }> => {
    const res = await request(`${g.url}/v1/webhooks/key`, { headers: { authorization: `Bearer ${keys[customer]}` } });
    return { status: res.statusCode, body: await res.body.json() };
  };
  const hook = async (customer: string, path: string): Promise<Delivery> => {
    const res = await request(`${gw.url}/v1/images`, {
      method: 'POST', body: PHOTO,
      headers: { 'x-api-key': keys[customer]!, 'x-options': JSON.stringify({ resize: { width: 64 }, format: 'jpeg', webhook: `${rx.url}${path}` }) },
    });
    const text = await res.body.text();
    assert.equal(res.statusCode, 202, text);
    await rx.until((ds) => ds.some((d) => d.path === path), 30_000);
    return rx.deliveries.find((d) => d.path === path)!;
  };
  const verify = (secret: string, d: Delivery): unknown => new Webhook(secret).verify(d.body, d.headers as Record<string, string>);

  it("the queue's deliveries verify with their customer's key from GET /v1/webhooks/key, and never with another customer's", async () => {
    const acme = (await webhookKey(gw, 'acme')).body.key as string;
    const globex = (await webhookKey(gw, 'globex')).body.key as string;
    assert.notEqual(acme, globex);
    const a = await hook('acme', '/acme');
    const g = await hook('globex', '/globex');
    assert.equal((verify(acme, a) as { status: string }).status, 'succeeded');
    verify(globex, g);
    assert.throws(() => verify(globex, a), /signature/i);
    assert.throws(() => verify(acme, g), /signature/i);
  });

  it('keys are at rest only sealed: the Redis value holds neither the key nor its bytes', async () => {
    const acme = (await webhookKey(gw, 'acme')).body.key as string;
    const raw = (await rc.get('sluice:whkey:{acme}'))!;
    const bytes = Buffer.from(acme.slice('whsec_'.length), 'base64');
    assert.ok(!raw.includes(acme.slice('whsec_'.length)), 'no base64 of the key');
    assert.ok(!raw.includes(bytes.toString('base64url')) && !raw.includes(bytes.toString('hex')), 'no other spelling of it');
    const record = JSON.parse(raw) as { keys: { enc: string }[] };
    assert.match(record.keys[0]!.enc, /^v1\.[0-9a-f]{8}\.[\w-]+\.[\w-]+\.[\w-]+$/);
    // Bound to its customer: moved under another customer's name it does not open.
    await rc.set('sluice:whkey:{thief}', raw);
    const thief = (await createKey(gw.adminUrl, 'thief', 'test')).key;
    const res = await request(`${gw.url}/v1/webhooks/key`, { headers: { 'x-api-key': thief } });
    assert.equal(res.statusCode, 503, 'a sealed key copied to another customer fails authentication, it is never handed out');
    await res.body.dump();
  });

  it('the master key rotates: new + previous, rewrap, then the new one alone; no customer key changes', async () => {
    const acme = (await webhookKey(gw, 'acme')).body.key as string;
    const globex = (await webhookKey(gw, 'globex')).body.key as string;
    await gw.stop();
    gw = await spawnGateway(config(), { SLUICE_MASTER_KEY: M2, SLUICE_MASTER_KEY_PREVIOUS: M1 });
    assert.equal((await webhookKey(gw, 'acme')).body.key, acme, 'read under the previous key');
    await rc.del('sluice:whkey:{thief}');
    const rewrap = await admin(gw.adminUrl, 'POST', '/admin/webhook-keys/rewrap');
    assert.equal(rewrap.status, 200, rewrap.text);
    assert.equal(rewrap.body.rewrapped, 2);
    const again = await admin(gw.adminUrl, 'POST', '/admin/webhook-keys/rewrap');
    assert.deepEqual([again.body.rewrapped, again.body.current], [0, 2]);
    assert.ok((await rc.get('sluice:whkey:{acme}'))!.includes(`"v1.${rewrap.body.master_key}.`), 'sealed under the new master key');
    const audit = await admin(gw.adminUrl, 'GET', '/admin/audit?action=webhook_keys.rewrap');
    assert.equal(audit.body.entries.length, 2);

    await gw.stop();
    gw = await spawnGateway(config(), { SLUICE_MASTER_KEY: M2 });
    assert.equal((await webhookKey(gw, 'acme')).body.key, acme, 'the new master key alone opens it');
    assert.equal((await webhookKey(gw, 'globex')).body.key, globex);
    await worker.stop();
    worker = await spawnWebhooks(redis.url, [], { SLUICE_MASTER_KEY: M2 });
    verify(acme, await hook('acme', '/after-rotation'));

    await gw.stop();
    gw = await spawnGateway(config(), { SLUICE_MASTER_KEY: M1 });
    const old = await webhookKey(gw, 'acme');
    assert.equal(old.status, 503, 'the retired master key opens nothing');
  });

  it('without SLUICE_MASTER_KEY a Redis gateway says so: 503, never a key made up on the spot', async () => {
    await gw.stop();
    gw = await spawnGateway(config(), { SLUICE_MASTER_KEY: '' });
    assert.ok(gw.lines.some((l) => /SLUICE_MASTER_KEY is not set/.test(String(l.msg))));
    const r = await webhookKey(gw, 'acme');
    assert.equal(r.status, 503);
    assert.match(r.body.error.message, /SLUICE_MASTER_KEY/);
  });
});
