import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import sharp from 'sharp';
import { request } from 'undici';
import { parseBackendConfig } from './config.js';
import type { ImageService } from './server.js';
import { createBackend } from './wire.js';

// /v1/detect and crop: face through the HTTP service, with the real TensorFlow workers.
const demo = (name: string): Buffer => readFileSync(fileURLToPath(new URL(`../../../node_modules/@vladmandic/face-api/demo/${name}`, import.meta.url)));

interface Detection { faces: Array<{ box: { x: number; y: number; width: number; height: number }; score: number }>; width: number; height: number }

describe('face detection through the service', () => {
  let svc: ImageService;
  let base: string;

  before(async () => {
    svc = await createBackend(parseBackendConfig(['--port', '0', '--face-workers', '1'], {}), pino({ level: 'silent' }));
    base = `http://127.0.0.1:${await svc.listen(0, '127.0.0.1')}`;
  });
  after(async () => { await svc?.close(); });

  it('POST /v1/detect finds the faces of a group photo, boxes inside the image', async () => {
    const photo = demo('sample1.jpg');
    const meta = await sharp(photo).metadata();
    const res = await request(`${base}/v1/detect`, { method: 'POST', body: photo });
    assert.equal(res.statusCode, 200);
    assert.ok(res.headers['x-backend-load']);
    const d = await res.body.json() as Detection;
    assert.equal(d.width, meta.width);
    assert.equal(d.height, meta.height);
    assert.ok(d.faces.length >= 3, `found ${d.faces.length} faces`);
    for (const f of d.faces) {
      assert.ok(f.score > 0 && f.score <= 1);
      assert.ok(f.box.x >= 0 && f.box.y >= 0 && f.box.x + f.box.width <= d.width + 1 && f.box.y + f.box.height <= d.height + 1, JSON.stringify(f.box));
    }
  });

  it('a photo with no face gives an empty list; garbage is 415 JSON', async () => {
    const plain = await sharp({ create: { width: 320, height: 240, channels: 3, background: { r: 30, g: 120, b: 200 } } }).jpeg().toBuffer();
    const res = await request(`${base}/v1/detect`, { method: 'POST', body: plain });
    assert.equal(res.statusCode, 200);
    assert.deepEqual((await res.body.json() as Detection).faces, []);
    const bad = await request(`${base}/v1/detect`, { method: 'POST', body: 'definitely not an image, only words here' });
    assert.equal(bad.statusCode, 415);
    assert.equal((await bad.body.json() as { error: { code: string } }).error.code, 'unsupported_media_type');
  });

  it('crop: face through /v1/images answers a cropped image of the requested size', async () => {
    const res = await request(`${base}/v1/images`, {
      method: 'POST', body: demo('sample1.jpg'),
      headers: { 'x-options': JSON.stringify({ resize: { width: 200, height: 200 }, crop: 'face', format: 'jpeg' }) },
    });
    assert.equal(res.statusCode, 200);
    const r = await res.body.json() as { output: { width: number; height: number } };
    assert.equal(r.output.width, 200);
    assert.equal(r.output.height, 200);
  });
});
