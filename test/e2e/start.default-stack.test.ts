import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { request } from 'undici';
import { pollUntil } from '../harness/poll.js';
import { spawnGateway, type GatewayProcess } from '../harness/gateway.js';
import { freePort } from '../harness/ports.js';

// `npm start` runs exactly this config; only the ports move, so the test can run beside others.
const ROOT = new URL('../../../', import.meta.url);
const CONFIG = readFileSync(fileURLToPath(new URL('config/sluice.yaml', ROOT)), 'utf8');
const PHOTO = readFileSync(fileURLToPath(new URL('node_modules/@vladmandic/face-api/demo/sample1.jpg', ROOT)));

interface ImageResponse {
  id: string;
  input: { format: string; width: number; height: number; bytes: number };
  output: { format: string; width: number; height: number; bytes: number; url: string };
  savings: { bytes: number; percent: number };
}

describe('the default stack (config/sluice.yaml): memory store, two image backends, demo keys', { timeout: 180_000 }, () => {
  let gw: GatewayProcess;

  before(async () => {
    gw = await spawnGateway(CONFIG, {
      SLUICE_PORT: '0', SLUICE_ADMIN_PORT: '0',
      SLUICE_BACKEND_PORT_1: String(await freePort()), SLUICE_BACKEND_PORT_2: String(await freePort()),
    });
  });
  after(async () => { await gw?.stop('SIGINT'); });

  it('serves from its first request: the gateway listens only once both backends do', async () => {
    // No retry and no wait: `sluice listening` (what spawnGateway waited for) must mean ready.
    for (let i = 0; i < 4; i++) {
      const res = await request(`${gw.url}/openapi.json`);
      await res.body.dump();
      assert.equal(res.statusCode, 200, `request ${i + 1} after start`);
    }
  });

  it('demo-pro uploads a photo and gets a smaller WebP and a result URL that works without a key', async () => {
    const res = await request(`${gw.url}/v1/images`, {
      method: 'POST',
      body: PHOTO,
      headers: { 'x-api-key': 'demo-pro', 'content-type': 'application/octet-stream', 'x-options': JSON.stringify({ resize: { width: 800 }, format: 'webp' }) },
    });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['ratelimit-policy']), /^"pro";q=200;w=2$/);
    const body = await res.body.json() as ImageResponse;
    assert.equal(body.input.format, 'jpeg');
    assert.equal(body.output.format, 'webp');
    assert.equal(body.output.width, 800);
    assert.ok(body.output.bytes < body.input.bytes, `${body.output.bytes} < ${body.input.bytes}`);
    assert.match(body.output.url, /^\/v1\/results\/[A-Za-z0-9_-]{22,}$/);
    // Twice: round-robin puts the downloads on both backends, which share the results directory.
    for (let i = 0; i < 2; i++) {
      const got = await request(`${gw.url}${body.output.url}`);
      assert.equal(got.statusCode, 200);
      assert.equal(got.headers['content-type'], 'image/webp');
      assert.equal(got.headers['x-content-type-options'], 'nosniff');
      assert.equal((await got.body.arrayBuffer()).byteLength, body.output.bytes);
    }
  });

  it('finds the faces of a group photo and crops to them', async () => {
    const detect = await request(`${gw.url}/v1/detect`, { method: 'POST', body: PHOTO, headers: { 'x-api-key': 'demo-pro' } });
    assert.equal(detect.statusCode, 200);
    const found = await detect.body.json() as { faces: { box: { x: number; y: number; width: number; height: number } }[]; width: number; height: number };
    assert.equal(found.faces.length, 3);
    const crop = await request(`${gw.url}/v1/images`, {
      method: 'POST',
      body: PHOTO,
      headers: { 'x-api-key': 'demo-pro', 'x-options': JSON.stringify({ crop: { mode: 'face', aspect: '16:9' }, format: 'jpeg' }) },
    });
    assert.equal(crop.statusCode, 200);
    const out = (await crop.body.json() as ImageResponse).output;
    assert.ok(Math.abs(out.width / out.height - 16 / 9) < 0.01, `${out.width}x${out.height} is 16:9`);
    // gravity face through the real detector (placement itself: image.operations.test.ts).
    const square = await request(`${gw.url}/v1/images`, {
      method: 'POST',
      body: PHOTO,
      headers: { 'x-api-key': 'demo-pro', 'x-options': JSON.stringify({ resize: { width: 300, height: 300, gravity: 'face' }, format: 'jpeg' }) },
    });
    assert.equal(square.statusCode, 200);
    const sq = (await square.body.json() as ImageResponse).output;
    assert.deepEqual([sq.width, sq.height], [300, 300]);
  });

  it('no key gets 401 JSON; a garbage upload gets 415 JSON', async () => {
    const res = await request(`${gw.url}/v1/images`, { method: 'POST', body: 'hello' });
    assert.equal(res.statusCode, 401);
    const body = await res.body.json() as { error: { code: string; request_id: string } };
    assert.equal(body.error.code, 'unauthorized');
    assert.equal(body.error.request_id, res.headers['x-request-id']);
    const garbage = await request(`${gw.url}/v1/images`, { method: 'POST', body: 'definitely not an image', headers: { 'x-api-key': 'demo-pro' } });
    assert.equal(garbage.statusCode, 415);
    assert.equal((await garbage.body.json() as { error: { code: string } }).error.code, 'unsupported_media_type');
  });

  it('hammering demo-free gets 429 with Retry-After and RateLimit headers after its burst of 10', async () => {
    const statuses: number[] = [];
    let first429: Awaited<ReturnType<typeof request>> | undefined;
    for (let i = 0; i < 15; i++) {
      const res = await request(`${gw.url}/v1/x`, { headers: { 'x-api-key': 'demo-free' } });
      statuses.push(res.statusCode);
      if (res.statusCode === 429 && first429 === undefined) { first429 = res; continue; }
      await res.body.dump();
    }
    // Sequential requests take well under 200 ms, so at 5/s at most one token refills.
    const admitted = statuses.filter((s) => s !== 429).length;
    assert.ok(admitted >= 10 && admitted <= 11, `admitted ${admitted}: ${statuses.join(',')}`);
    assert.ok(first429 !== undefined);
    assert.ok(Number(first429.headers['retry-after']) >= 1);
    assert.equal(first429.headers['ratelimit-policy'], '"free";q=10;w=2, "free-day";q=1000;w=86400');
    assert.match(String(first429.headers['ratelimit']), /^"free";r=0;t=\d+, "free-day";r=\d+;t=\d+$/);
    const body = await first429.body.json() as { error: { code: string } };
    assert.equal(body.error.code, 'rate_limited');
  });

  it('the image operations work through the gateway; a watermark is its uploader\'s alone, on both backends', async () => {
    const logo = await sharp({ create: { width: 20, height: 20, channels: 3, background: '#00ff00' } }).png().toBuffer();
    const put = await request(`${gw.url}/v1/watermarks/logo`, { method: 'PUT', body: logo, headers: { 'x-api-key': 'demo-pro' } });
    assert.equal(put.statusCode, 201);
    await put.body.dump();
    const options = {
      scale: { percent: 25 }, filter: { grayscale: true }, border: { size: 6, color: '#ff0000' },
      watermark: { id: 'logo', gravity: 'southeast', padding: 8, scale: 0.1 }, format: 'png',
    };
    const meta = await sharp(PHOTO).metadata();
    const w = Math.round(meta.width * 0.25);
    const h = Math.round(meta.height * 0.25);
    // Twice: round-robin sends one to each backend, and both must find the watermark.
    for (let i = 0; i < 2; i++) {
      const res = await request(`${gw.url}/v1/images`, { method: 'POST', body: PHOTO, headers: { 'x-api-key': 'demo-pro', accept: 'image/png', 'x-options': JSON.stringify(options) } });
      assert.equal(res.statusCode, 200, `request ${i + 1}`);
      const out = Buffer.from(await res.body.arrayBuffer());
      const { data, info } = await sharp(out).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
      assert.deepEqual([info.width, info.height], [w + 12, h + 12]);
      const at = (x: number, y: number): number[] => { const j = (y * info.width + x) * info.channels; return [data[j]!, data[j + 1]!, data[j + 2]!]; };
      assert.deepEqual(at(0, 0), [255, 0, 0], 'border');
      const [r, g, b] = at(Math.round(info.width / 2), Math.round(info.height / 2));
      assert.ok(r === g && g === b, `grayscale centre ${r},${g},${b}`);
      // The logo (green) sits inside the border, 8 px from the bottom-right corner of the image.
      const mark = at(info.width - 6 - 8 - 3, info.height - 6 - 8 - 3);
      assert.ok(mark[1]! > 200 && mark[0]! < 60, `watermark pixel ${mark}`);
    }
    // demo-free has no watermark "logo"; its burst may be spent by the test before, so wait out a 429.
    const other = await pollUntil(async () => {
      const res = await request(`${gw.url}/v1/images`, { method: 'POST', body: PHOTO, headers: { 'x-api-key': 'demo-free', 'x-options': JSON.stringify(options) } });
      if (res.statusCode === 429) { await res.body.dump(); return undefined; }
      return { status: res.statusCode, body: await res.body.json() as { error: { field: string } } };
    }, 10_000, 250);
    assert.equal(other.value?.status, 400);
    assert.equal(other.value?.body.error.field, 'watermark.id');
  });

  it('/metrics and the access log show the traffic', async () => {
    const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text();
    assert.match(metrics, /sluice_requests_total\{route="api",status="429",plan="free"\} [1-9]/);
    assert.match(metrics, /sluice_requests_total\{route="results",status="200",plan="\(none\)"\} [1-9]/);
    assert.match(metrics, /sluice_limit_decisions_total\{result="rate_limited"\} [1-9]/);
    const line = await gw.waitForLine((l) => l.msg === 'request' && l.status === 429);
    assert.equal(line.customer, 'demo-free');
    assert.equal(line.limit, 'rate_limited');
  });
});
