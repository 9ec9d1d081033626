import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import sharp from 'sharp';
import { request } from 'undici';
import { parseWork, WORK_HEADER } from '../../common/work-report.js';
import { parseBackendConfig } from './config.js';
import type { ImageService } from './server.js';
import { createBackend } from './wire.js';

// The work report a backend sends the gateway (x-sluice-work): the pixels it decoded,
// the encoders it ran, a format search, a face detection, from the real pipeline.

const PHOTO = readFileSync(fileURLToPath(new URL('../../../node_modules/@vladmandic/face-api/demo/sample1.jpg', import.meta.url)));

describe('the work report of the real pipeline', () => {
  let svc: ImageService;
  let base: string;
  let pixels: number;

  before(async () => {
    svc = await createBackend(parseBackendConfig(['--port', '0', '--face-workers', '1'], {}), pino({ level: 'silent' }));
    base = `http://127.0.0.1:${await svc.listen(0, '127.0.0.1')}`;
    const meta = await sharp(PHOTO).metadata();
    pixels = meta.width! * meta.height!;
  });
  after(async () => { await svc?.close(); });

  const work = async (path: string, options?: object, accept?: string): Promise<ReturnType<typeof parseWork>> => {
    const res = await request(`${base}${path}`, {
      method: 'POST', body: PHOTO,
      headers: { ...(options === undefined ? {} : { 'x-options': JSON.stringify(options) }), ...(accept === undefined ? {} : { accept }) },
    });
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    return parseWork(res.headers[WORK_HEADER]);
  };

  it('one encode of the decoded pixels', async () => {
    assert.deepEqual(await work('/v1/images', { resize: { width: 200 }, format: 'webp' }), { pixels, encodes: 1, auto: false, detect: false });
  });

  it('format: auto encodes each candidate the client accepts', async () => {
    assert.deepEqual(await work('/v1/images', { resize: { width: 200 }, format: 'auto' }), { pixels, encodes: 3, auto: true, detect: false });
    assert.deepEqual(await work('/v1/images', { resize: { width: 200 }, format: 'auto' }, 'image/webp,image/jpeg'), { pixels, encodes: 2, auto: true, detect: false });
    // The bytes themselves (Accept: image/*) carry it too.
    assert.equal((await work('/v1/images', { resize: { width: 200 }, format: 'auto' }, 'image/*'))?.auto, true);
  });

  it('a face crop and POST /v1/detect report the detection', async () => {
    assert.deepEqual(await work('/v1/images', { crop: { mode: 'face', aspect: '1:1' }, resize: { width: 100 } }), { pixels, encodes: 1, auto: false, detect: true });
    assert.deepEqual(await work('/v1/detect'), { pixels, encodes: 0, auto: false, detect: true });
  });
});
