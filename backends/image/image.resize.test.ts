import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import { parseOptions } from './options.js';
import { processImage } from './process.js';
import { limits, photo } from './fixtures.js';

// sample1.jpg is 1920×1280 (3:2).
async function dims(resize: object): Promise<[number, number]> {
  const r = await processImage(photo(), parseOptions({ resize, format: 'jpeg' }), limits());
  const m = await sharp(r.data).metadata();
  assert.deepEqual([r.output.width, r.output.height], [m.width, m.height], 'reported dims match the bytes');
  return [m.width, m.height];
}

test('each fit gives the right decoded dimensions', async () => {
  assert.deepEqual(await dims({ width: 400, height: 400, fit: 'cover' }), [400, 400]);
  assert.deepEqual(await dims({ width: 400, height: 400, fit: 'contain' }), [400, 400]);
  assert.deepEqual(await dims({ width: 400, height: 100, fit: 'fill' }), [400, 100]);
  assert.deepEqual(await dims({ width: 400, height: 400, fit: 'inside' }), [400, 267]);
  assert.deepEqual(await dims({ width: 400, height: 400, fit: 'outside' }), [600, 400]);
  assert.deepEqual(await dims({ width: 960 }), [960, 640]);
  assert.deepEqual(await dims({ height: 320 }), [480, 320]);
});

test('never upscales unless asked', async () => {
  assert.deepEqual(await dims({ width: 4000 }), [1920, 1280]);
  assert.deepEqual(await dims({ width: 4000, height: 4000, fit: 'inside' }), [1920, 1280]);
  assert.deepEqual(await dims({ width: 2400, upscale: true }), [2400, 1600]);
});

test('contain pads with transparency when the output has alpha', async () => {
  const r = await processImage(photo(), parseOptions({ resize: { width: 300, height: 300, fit: 'contain' }, format: 'png' }), limits());
  const { data, info } = await sharp(r.data).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  assert.equal(data[3], 0, 'top-left corner is padding and transparent');
  const mid = ((150 * info.width) + 150) * 4;
  assert.equal(data[mid + 3], 255);
});
