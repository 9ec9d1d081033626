import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import sharp from 'sharp';
import { request } from 'undici';
import { parseBackendConfig } from './config.js';
import type { ImageService } from './server.js';
import { createBackend } from './wire.js';

// The operations and the watermark store through the backend's HTTP API, with the real
// processing: what the gateway forwards, X-Sluice-Customer included.

const solid = (w: number, h: number, background: string): Promise<Buffer> =>
  sharp({ create: { width: w, height: h, channels: 3, background } }).png().toBuffer();

async function rgb(img: Buffer, x: number, y: number): Promise<number[]> {
  const { data, info } = await sharp(img).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const i = (y * info.width + x) * info.channels;
  return [data[i]!, data[i + 1]!, data[i + 2]!];
}

describe('image operations and watermarks over HTTP', () => {
  let svc: ImageService;
  let base: string;
  const MAX_BYTES = 4096;
  const MAX_PIXELS = 64 * 64;

  before(async () => {
    const cfg = parseBackendConfig(['--port', '0', '--face-workers', '0', '--watermark-max-bytes', String(MAX_BYTES), '--watermark-max-pixels', String(MAX_PIXELS)], {});
    svc = await createBackend(cfg, pino({ level: 'silent' }));
    base = `http://127.0.0.1:${await svc.listen(0, '127.0.0.1')}`;
  });
  after(async () => { await svc.close(); });

  const upload = (customer: string | undefined, id: string, body: Buffer) => request(`${base}/v1/watermarks/${id}`, {
    method: 'PUT', body, headers: customer === undefined ? {} : { 'x-sluice-customer': customer },
  });
  const image = (customer: string | undefined, body: Buffer, options: object) => request(`${base}/v1/images`, {
    method: 'POST', body,
    headers: { accept: 'image/*', 'x-options': JSON.stringify(options), ...(customer === undefined ? {} : { 'x-sluice-customer': customer }) },
  });

  it('negate, grayscale and border come back as pixels through the API', async () => {
    const res = await image(undefined, await solid(20, 10, '#c82850'), { filter: { negate: true, grayscale: false }, border: { size: 3, color: '#0000ff' }, format: 'png' });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'image/png');
    // The latency split bench:images reports comes from here.
    assert.match(String(res.headers['server-timing']), /^upload;dur=[\d.]+, queue;dur=[\d.]+, process;dur=[\d.]+, store;dur=[\d.]+$/);
    const out = Buffer.from(await res.body.arrayBuffer());
    const meta = await sharp(out).metadata();
    assert.deepEqual([meta.width, meta.height], [26, 16]);
    assert.deepEqual(await rgb(out, 0, 0), [0, 0, 255]);
    assert.deepEqual(await rgb(out, 10, 8), [255 - 0xc8, 255 - 0x28, 255 - 0x50]);
  });

  it('a bad option is a 400 JSON naming the field', async () => {
    const res = await image(undefined, await solid(8, 8, '#fff'), { adjust: { gamma: 9 } });
    assert.equal(res.statusCode, 400);
    const body = await res.body.json() as { error: { code: string; field: string } };
    assert.equal(body.error.code, 'bad_request');
    assert.equal(body.error.field, 'adjust.gamma');
  });

  it('a watermark uploaded by one customer marks its images and no one else\'s', async () => {
    const put = await upload('acme', 'logo', await solid(16, 16, '#00ff00'));
    assert.equal(put.statusCode, 201);
    const stored = await put.body.json() as { id: string; width: number; height: number; bytes: number };
    assert.deepEqual({ ...stored, bytes: stored.bytes > 0 }, { id: 'logo', width: 16, height: 16, bytes: true });

    const photo = await solid(100, 60, '#ffffff');
    const opts = { watermark: { id: 'logo', gravity: 'northwest', padding: 4, scale: 0.2 }, format: 'png' };
    const mine = await image('acme', photo, opts);
    assert.equal(mine.statusCode, 200);
    const marked = Buffer.from(await mine.body.arrayBuffer());
    assert.deepEqual(await rgb(marked, 10, 10), [0, 255, 0], 'watermark region is the logo');
    assert.deepEqual(await rgb(marked, 60, 40), [255, 255, 255], 'the rest untouched');

    const theirs = await image('globex', photo, opts);
    assert.equal(theirs.statusCode, 400);
    assert.equal((await theirs.body.json() as { error: { field: string } }).error.field, 'watermark.id');
    const anonymous = await image(undefined, photo, opts);
    assert.equal(anonymous.statusCode, 400);
    await anonymous.body.dump();

    // Another customer's upload under the same id replaces nothing of acme's.
    assert.equal((await upload('globex', 'logo', await solid(16, 16, '#ff0000'))).statusCode, 201);
    const again = Buffer.from(await (await image('acme', photo, opts)).body.arrayBuffer());
    assert.deepEqual(await rgb(again, 10, 10), [0, 255, 0]);

    const del = await request(`${base}/v1/watermarks/logo`, { method: 'DELETE', headers: { 'x-sluice-customer': 'acme' } });
    assert.equal(del.statusCode, 204);
    await del.body.dump();
    const gone = await image('acme', photo, opts);
    assert.equal(gone.statusCode, 400);
    await gone.body.dump();
    const delAgain = await request(`${base}/v1/watermarks/logo`, { method: 'DELETE', headers: { 'x-sluice-customer': 'acme' } });
    assert.equal(delAgain.statusCode, 404);
    await delAgain.body.dump();
  });

  it('watermark uploads are limited in bytes and pixels, and must be images', async () => {
    const noisy = await sharp(randomBytes(60 * 60 * 3), { raw: { width: 60, height: 60, channels: 3 } }).png().toBuffer();
    assert.ok(noisy.length > MAX_BYTES, `fixture is ${noisy.length} bytes`);
    const big = await upload('acme', 'big', noisy);
    assert.equal(big.statusCode, 413);
    await big.body.dump();
    const wide = await upload('acme', 'wide', await solid(65, 64, '#000'));
    assert.equal(wide.statusCode, 413);
    assert.match((await wide.body.json() as { error: { message: string } }).error.message, /4096 pixels/);
    const text = await upload('acme', 'text', Buffer.from('not an image at all'));
    assert.equal(text.statusCode, 415);
    await text.body.dump();
    const badId = await upload('acme', 'a.b', await solid(8, 8, '#000'));
    assert.equal(badId.statusCode, 400);
    await badId.body.dump();
    const ok = await upload('acme', 'edge', await solid(64, 64, '#000'));
    assert.equal(ok.statusCode, 201);
    await ok.body.dump();
  });
});
