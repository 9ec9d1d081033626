import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import sharp from 'sharp';
import { request } from 'undici';
import { formBody } from '../../test/harness/multipart.js';
import { pollUntil } from '../../test/harness/poll.js';
import { parseBackendConfig } from './config.js';
import type { DirectoryResultsStore } from './results-store.js';
import type { ImageService } from './server.js';
import { createBackend } from './wire.js';

// The service wired to the real options, sniffing, sharp pipeline and fetch guard.
const PHOTO = readFileSync(fileURLToPath(new URL('../../../node_modules/@vladmandic/face-api/demo/sample1.jpg', import.meta.url)));

interface Result {
  id: string;
  input: { format: string; width: number; height: number; bytes: number };
  output: { format: string; width: number; height: number; bytes: number; url: string };
  savings: { bytes: number; percent: number };
}

describe('image service end to end (real processing, short TTL)', () => {
  let svc: ImageService;
  let base: string;

  before(async () => {
    const cfg = parseBackendConfig(['--port', '0', '--face-workers', '0', '--result-ttl', '1', '--max-body-bytes', String(2 * 1024 * 1024)], {});
    svc = await createBackend(cfg, pino({ level: 'silent' }));
    base = `http://127.0.0.1:${await svc.listen(0, '127.0.0.1')}`;
  });
  after(async () => { await svc.close(); });

  function checkShape(r: Result): void {
    assert.match(r.id, /^[A-Za-z0-9_-]{22}$/);
    assert.equal(r.input.format, 'jpeg');
    assert.equal(r.input.bytes, PHOTO.length);
    assert.equal(r.output.format, 'webp');
    assert.equal(r.output.width, 400);
    assert.equal(r.output.url, `/v1/results/${r.id}`);
    assert.ok(r.output.bytes < r.input.bytes, 'smaller');
    assert.equal(r.savings.bytes, r.input.bytes - r.output.bytes);
    assert.ok(r.savings.percent > 0 && r.savings.percent < 100);
  }

  it('raw upload with X-Options → JSON, a smaller WebP, and a working result URL', async () => {
    const res = await request(`${base}/v1/images`, {
      method: 'POST', body: PHOTO,
      headers: { 'content-type': 'text/plain', 'x-options': JSON.stringify({ resize: { width: 400 }, format: 'webp', quality: 80 }) },
    });
    assert.equal(res.statusCode, 200);
    const r = await res.body.json() as Result;
    checkShape(r);
    const got = await request(`${base}${r.output.url}`);
    assert.equal(got.statusCode, 200);
    assert.equal(got.headers['content-type'], 'image/webp');
    assert.equal(got.headers['x-content-type-options'], 'nosniff');
    assert.match(String(got.headers['cache-control']), /^private, max-age=1$/);
    const bytes = Buffer.from(await got.body.arrayBuffer());
    assert.equal(bytes.length, r.output.bytes);
    const meta = await sharp(bytes).metadata();
    assert.equal(meta.format, 'webp');
    assert.equal(meta.width, 400);
  });

  it('multipart upload with an options field gives the same', async () => {
    const form = new FormData();
    form.append('file', new Blob([PHOTO], { type: 'application/pdf' }), 'lies.pdf');
    form.append('options', JSON.stringify({ resize: { width: 400 }, format: 'webp' }));
    const res = await request(`${base}/v1/images`, { method: 'POST', ...await formBody(form) });
    assert.equal(res.statusCode, 200);
    checkShape(await res.body.json() as Result);
  });

  it('Accept: image/* returns the image bytes with the metadata in X-Image-Result', async () => {
    const res = await request(`${base}/v1/images`, {
      method: 'POST', body: PHOTO, headers: { accept: 'image/*', 'x-options': '{"resize":{"width":400},"format":"webp"}' },
    });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'image/webp');
    const r = JSON.parse(String(res.headers['x-image-result'])) as Result;
    checkShape(r);
    const bytes = Buffer.from(await res.body.arrayBuffer());
    assert.equal(bytes.length, r.output.bytes);
    assert.equal((await sharp(bytes).metadata()).format, 'webp');
  });

  it('format auto keeps to the formats the Accept header takes', async () => {
    const post = (accept: string) => request(`${base}/v1/images`, {
      method: 'POST', body: PHOTO, headers: { accept, 'x-options': JSON.stringify({ resize: { width: 320 }, format: 'auto' }) },
    });
    const jpeg = await post('image/jpeg');
    assert.equal(jpeg.statusCode, 200);
    assert.equal(jpeg.headers['content-type'], 'image/jpeg');
    assert.equal((await sharp(Buffer.from(await jpeg.body.arrayBuffer())).metadata()).format, 'jpeg');
    const noAvif = await post('image/avif;q=0, image/*');
    assert.equal(noAvif.statusCode, 200);
    assert.notEqual(noAvif.headers['content-type'], 'image/avif');
    assert.match(String(noAvif.headers['content-type']), /^image\/(webp|jpeg)$/);
    await noAvif.body.dump();
  });

  it('a result is gone after its TTL: 404 JSON, and the file is deleted from the directory', async () => {
    const res = await request(`${base}/v1/images`, { method: 'POST', body: PHOTO, headers: { 'x-options': '{"resize":{"width":64},"format":"png"}' } });
    assert.equal(res.statusCode, 200);
    const r = await res.body.json() as Result;
    const file = join((svc.store as DirectoryResultsStore).dir, r.id);
    assert.ok(existsSync(file));
    assert.equal((await request(`${base}${r.output.url}`).then(async (x) => { await x.body.dump(); return x; })).statusCode, 200);
    // TTL 1 s; the sweeper runs every second: gone well within 5 s, whichever gets there first.
    const gone = await pollUntil(async () => {
      const x = await request(`${base}${r.output.url}`);
      if (x.statusCode !== 404) { await x.body.dump(); return undefined; }
      return await x.body.json() as { error: { code: string } };
    }, 5000, 100);
    assert.ok(gone.value, 'result still served after its TTL');
    assert.equal(gone.value.error.code, 'not_found');
    const deleted = await pollUntil(async () => (existsSync(file) ? undefined : true), 5000, 100);
    assert.ok(deleted.value, 'file still on disk after its TTL');
  });

  it('garbage is 415 JSON, a truncated JPEG is 4xx JSON, bad options 400 naming the field', async () => {
    const res = await request(`${base}/v1/images`, { method: 'POST', body: Buffer.from('this is not an image at all, just text'.repeat(10)) });
    assert.equal(res.statusCode, 415);
    assert.equal((await res.body.json() as { error: { code: string } }).error.code, 'unsupported_media_type');
    const trunc = await request(`${base}/v1/images`, { method: 'POST', body: PHOTO.subarray(0, 300) });
    assert.ok(trunc.statusCode === 415 || trunc.statusCode === 422, String(trunc.statusCode));
    assert.ok((await trunc.body.json() as { error: { code: string } }).error.code);
    const bad = await request(`${base}/v1/images`, { method: 'POST', body: PHOTO, headers: { 'x-options': '{"quality":500}' } });
    assert.equal(bad.statusCode, 400);
    const body = await bad.body.json() as { error: { field: string; message: string } };
    assert.equal(body.error.field, 'quality');
    assert.match(body.error.message, /quality/);
  });

  it('a body over --max-body-bytes is 413 JSON', async () => {
    const res = await request(`${base}/v1/images`, { method: 'POST', body: Buffer.alloc(2 * 1024 * 1024 + 1, 0xff) });
    assert.equal(res.statusCode, 413);
    assert.equal((await res.body.json() as { error: { code: string } }).error.code, 'payload_too_large');
  });

  it('fetch refuses a loopback URL (not in the allow-list) with JSON', async () => {
    const res = await request(`${base}/v1/images/fetch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url: `${base}/openapi.json` }) });
    assert.equal(res.statusCode, 422);
    assert.equal((await res.body.json() as { error: { code: string } }).error.code, 'forbidden_destination');
  });
});
