// The public contract on live answers: the stack `npm start` runs (gateway, two backends,
// memory store), real requests through the gateway for every operation and the answers a
// customer meets (success, every error the gateway or a backend gives here, limits), each
// answer checked against GET /v1/openapi.json: its status, its headers, its body.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { request } from 'undici';
import { admin } from '../../test/harness/admin.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { contractOf, type Contract, type Seen } from '../../test/harness/openapi-contract.js';
import { freePort } from '../../test/harness/ports.js';
import { publicOpenApi } from './public-openapi.js';

const ROOT = new URL('../../../', import.meta.url);
const CONFIG = readFileSync(fileURLToPath(new URL('config/sluice.yaml', ROOT)), 'utf8');
const PHOTO = readFileSync(fileURLToPath(new URL('node_modules/@vladmandic/face-api/demo/sample1.jpg', ROOT)));
const ADMIN = 'demo-admin';

describe('the public OpenAPI document describes what the gateway answers', { timeout: 180_000 }, () => {
  let gw: GatewayProcess;
  let contract: Contract;
  const problems: string[] = [];
  const seen: Seen[] = [];

  before(async () => {
    gw = await spawnGateway(CONFIG, {
      SLUICE_PORT: '0', SLUICE_ADMIN_PORT: '0',
      SLUICE_BACKEND_PORT_1: String(await freePort()), SLUICE_BACKEND_PORT_2: String(await freePort()),
    });
  });
  after(async () => { await gw?.stop('SIGINT'); });

  /** One request through the gateway, its answer checked against the document. */
  async function call(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<Seen> {
    const res = await request(`${gw.url}${path}`, { method, headers, body });
    const s: Seen = { method, url: path, status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
    seen.push(s);
    problems.push(...contract.check(s));
    return s;
  }
  const json = (s: Seen): any => JSON.parse(s.body.toString('utf8'));
  const pro = { 'x-api-key': 'demo-pro' };

  it('is served without a credential, is valid OpenAPI 3.1 (swagger-parser), and is what the schemas generate', async () => {
    const res = await request(`${gw.url}/v1/openapi.json`);
    assert.equal(res.statusCode, 200);
    const doc = await res.body.json() as any;
    assert.ok(JSON.stringify(doc) === JSON.stringify(publicOpenApi()), 'the document served is the one the schemas generate');
    contract = await contractOf(doc);
    assert.equal(doc.openapi, '3.1.0');
    assert.deepEqual(Object.keys(doc.components.securitySchemes).sort(), ['apiKey', 'basic', 'bearer']);
    assert.deepEqual(Object.keys(doc.paths).sort(), [
      '/v1/account', '/v1/detect', '/v1/images', '/v1/images/fetch', '/v1/openapi.json', '/v1/results/{id}', '/v1/watermarks/{id}', '/v1/webhooks/key', '/v1/webhooks/key/rotate',
    ]);
    for (const internal of ['/healthz', '/metrics', '/openapi.json']) assert.equal(doc.paths[internal], undefined, `${internal} is not reachable through the gateway`);
    for (const status of ['401', '403', '429']) assert.ok(doc.paths['/v1/images'].post.responses[status], `POST /v1/images documents ${status}`);
    assert.ok(doc.paths['/v1/images'].post.responses['429'].headers['Retry-After'].required);
    await call('GET', '/v1/openapi.json');
  });

  it('the image API: results, image bytes, async, and the errors a customer can cause', async () => {
    const processed = await call('POST', '/v1/images', { ...pro, 'x-options': JSON.stringify({ resize: { width: 320 }, format: 'webp' }) }, PHOTO);
    assert.equal(processed.status, 200);
    const bytes = await call('POST', '/v1/images', { ...pro, accept: 'image/webp', 'x-options': '{"format":"webp","resize":{"width":100}}' }, PHOTO);
    assert.equal(bytes.status, 200);
    assert.equal(bytes.headers['content-type'], 'image/webp');
    assert.equal((await call('POST', '/v1/images', { ...pro, 'x-options': '{"webhook":"https://hooks.example.test/x"}' }, PHOTO)).status, 202);
    assert.equal((await call('POST', '/v1/images', { ...pro, 'x-options': '{"resize":{"width":-5}}' }, PHOTO)).status, 400);
    assert.equal((await call('POST', '/v1/images', pro, Buffer.from('GARBAGE, not an image'))).status, 415);
    assert.equal((await call('POST', '/v1/images', {}, PHOTO)).status, 401);
    assert.equal((await call('POST', '/v1/images', { 'x-api-key': 'demo-free' }, Buffer.alloc(11 * 1024 * 1024))).status, 413, "over the free plan's body limit");
    const fetched = await call('POST', '/v1/images/fetch', { ...pro, 'content-type': 'application/json' }, JSON.stringify({ url: 'http://10.0.0.1/x.jpg' }));
    assert.equal(fetched.status, 422);
    assert.equal((await call('POST', '/v1/images/fetch', pro, 'url=x')).status, 415);
    const detected = await call('POST', '/v1/detect', pro, PHOTO);
    assert.equal(detected.status, 200);
    const url = (json(processed) as { output: { url: string } }).output.url;
    assert.equal((await call('GET', url)).status, 200);
    assert.equal((await call('GET', '/v1/results/AAAAAAAAAAAAAAAAAAAAAA')).status, 404);
    const mark = await sharp({ create: { width: 40, height: 20, channels: 4, background: { r: 255, g: 0, b: 0, alpha: 0.5 } } }).png().toBuffer();
    assert.equal((await call('PUT', '/v1/watermarks/logo', pro, mark)).status, 201);
    assert.equal((await call('PUT', '/v1/watermarks/logo', pro, Buffer.from('not an image'))).status, 415);
    assert.equal((await call('DELETE', '/v1/watermarks/logo', pro)).status, 204);
    assert.equal((await call('DELETE', '/v1/watermarks/logo', pro)).status, 404);
  });

  it("the gateway's own answers: account, webhook keys, and their errors", async () => {
    assert.equal((await call('GET', '/v1/account', pro)).status, 200);
    assert.equal((await call('POST', '/v1/account', pro)).status, 405);
    assert.equal((await call('GET', '/v1/webhooks/key', pro)).status, 200);
    assert.equal((await call('DELETE', '/v1/webhooks/key', pro)).status, 405);
    assert.equal((await call('POST', '/v1/webhooks/key/rotate', { ...pro, 'content-type': 'application/json' }, '{"overlap_seconds":99999999}')).status, 400);
    assert.equal((await call('POST', '/v1/webhooks/key/rotate', pro)).status, 200);
    assert.equal((await call('GET', '/v1/webhooks/key/rotate', pro)).status, 405);
    assert.equal((await call('GET', '/v1/account', { authorization: 'Bearer sluice_live_000000000000000000000000000000000000' })).status, 401);
  });

  it('keys with terms: an allowlist refusal (403), and a rotated key in its grace (Deprecation, Sunset)', async () => {
    const walled = await admin(gw.adminUrl, 'POST', '/admin/keys', { customer: 'walled', plan: 'pro', allow: ['192.0.2.0/24'] }, ADMIN);
    assert.equal(walled.status, 201, walled.text);
    assert.equal((await call('GET', '/v1/account', { 'x-api-key': walled.body.key })).status, 403);
    const k = await admin(gw.adminUrl, 'POST', '/admin/keys', { customer: 'rotating', plan: 'pro' }, ADMIN);
    assert.equal((await admin(gw.adminUrl, 'POST', `/admin/keys/${k.body.digest}/rotate`, { grace_seconds: 600 }, ADMIN)).status, 201);
    const old = await call('GET', '/v1/webhooks/key', { 'x-api-key': k.body.key });
    assert.equal(old.status, 200);
    assert.ok(old.headers.deprecation !== undefined && old.headers.sunset !== undefined);
  });

  it('the limits: a burst over the free plan gets 429 with Retry-After and the RateLimit headers', async () => {
    const answers = await Promise.all(Array.from({ length: 16 }, () => call('GET', '/v1/account', { 'x-api-key': 'demo-free' })));
    const limited = answers.filter((a) => a.status === 429);
    assert.ok(limited.length > 0, `statuses ${answers.map((a) => a.status).join(' ')}`);
    assert.match(String(json(limited[0]!).error.code), /^(rate_limited|concurrency_limited)$/);
  });

  it('every answer above is described by the document, and every operation was exercised', () => {
    assert.deepEqual(problems, []);
    assert.deepEqual(contract.operations().filter((op) => !contract.used.has(op)), []);
    assert.ok(seen.length >= 30);
  });
});
