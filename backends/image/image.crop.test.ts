import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import { parseOptions } from './options.js';
import { processImage } from './process.js';
import { ImageError } from './types.js';
import { halves, isBlue, isRed, limits, photo, pixel } from './fixtures.js';

test('explicit rectangle extracts exactly those pixels', async () => {
  const img = await halves(100, 50); // left red, right blue
  const r = await processImage(img, parseOptions({ crop: { x: 60, y: 10, width: 30, height: 20 }, format: 'png' }), limits());
  assert.deepEqual([r.output.width, r.output.height], [30, 20]);
  assert.ok(isBlue(await pixel(r.data, 0, 0)));
  const l = await processImage(img, parseOptions({ crop: { x: 0, y: 0, width: 40, height: 50 }, format: 'png' }), limits());
  assert.ok(isRed(await pixel(l.data, 39, 49)));
});

test('rectangle outside the image: 400 naming the field', async () => {
  const img = await halves(100, 50);
  const bad = (crop: object, field: string) =>
    assert.rejects(processImage(img, parseOptions({ crop }), limits()), (e: unknown) => e instanceof ImageError && e.status === 400 && e.field === field);
  await bad({ x: 90, y: 0, width: 20, height: 10 }, 'crop.width');
  await bad({ x: 100, y: 0, width: 1, height: 1 }, 'crop.x');
  await bad({ x: 0, y: 40, width: 10, height: 11 }, 'crop.height');
  await bad({ x: 0, y: 50, width: 10, height: 1 }, 'crop.y');
});

test('aspect-ratio crop, with and without resize', async () => {
  const a = await processImage(photo(), parseOptions({ crop: { aspect: '1:1' }, format: 'jpeg' }), limits());
  assert.deepEqual([a.output.width, a.output.height], [1280, 1280]);
  const b = await processImage(photo(), parseOptions({ crop: { aspect: '16:9', mode: 'attention' }, resize: { width: 640 }, format: 'jpeg' }), limits());
  assert.deepEqual([b.output.width, b.output.height], [640, 360]);
  const m = await sharp(b.data).metadata();
  assert.deepEqual([m.width, m.height], [640, 360]);
});

test('strategies pick different content: center vs attention on an off-centre subject', async () => {
  // A flat grey field with a detailed, saturated patch near the right edge.
  const noise = Buffer.alloc(80 * 80 * 3);
  for (let i = 0; i < noise.length; i++) noise[i] = (i * 7919) % 251;
  const img = await sharp({ create: { width: 400, height: 100, channels: 3, background: '#808080' } })
    .composite([{ input: noise, raw: { width: 80, height: 80, channels: 3 }, left: 310, top: 10 }])
    .png()
    .toBuffer();
  const run = async (mode: string) => {
    const r = await processImage(img, parseOptions({ crop: { mode, aspect: 1 }, format: 'png' }), limits());
    assert.deepEqual([r.output.width, r.output.height], [100, 100]);
    const st = await sharp(r.data).stats();
    return st.channels[0]!.stdev;
  };
  const centre = await run('center');
  assert.ok(centre < 1, 'the centre crop is flat grey');
  assert.ok((await run('attention')) > 20, 'attention finds the detailed patch');
  assert.ok((await run('entropy')) > 20, 'entropy finds the detailed patch');
});

test('a crop mode with nothing to crop to is a 400', async () => {
  await assert.rejects(processImage(photo(), parseOptions({ crop: { mode: 'attention' } }), limits()), (e: unknown) => e instanceof ImageError && e.field === 'crop.aspect');
});
