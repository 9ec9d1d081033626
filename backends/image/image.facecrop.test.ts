import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import { parseOptions } from './options.js';
import { processImage } from './process.js';
import type { Detection, FaceDetector } from './types.js';
import { limits, photo } from './fixtures.js';

// sample1.jpg is 1920×1280. Faces are injected so the test is about the crop, not the model.
const fake = (faces: Detection['faces'], calls: Buffer[] = []): FaceDetector => async (img) => {
  calls.push(img);
  return { faces, width: 1920, height: 1280 };
};

/** Find where the output came from: crop a 1:1 square at full resolution and locate it. */
async function cropOf(faces: Detection['faces']) {
  const calls: Buffer[] = [];
  const r = await processImage(photo(), parseOptions({ crop: { mode: 'face', aspect: 1 }, format: 'png' }), limits(), fake(faces, calls));
  return { r, calls };
}

test('face crop output is exactly the region around the injected faces', async () => {
  const { faceCropRegion } = await import('./face-crop.js');
  const faces = [
    { box: { x: 100, y: 300, width: 120, height: 140 }, score: 0.9 },
    { box: { x: 520, y: 400, width: 100, height: 110 }, score: 0.8 },
  ];
  const region = faceCropRegion(faces, 1920, 1280, 1, 1)!;
  const { r, calls } = await cropOf(faces);
  assert.equal(calls.length, 1);
  // Same pixels as cutting the region out of the photo by hand: the pipeline used it.
  const expected = await sharp(photo()).extract(region).raw().toBuffer();
  const actual = await sharp(r.data).removeAlpha().raw().toBuffer();
  assert.equal(actual.length, expected.length);
  let diff = 0;
  for (let i = 0; i < actual.length; i++) diff = Math.max(diff, Math.abs(actual[i]! - expected[i]!));
  assert.ok(diff <= 2, `max channel difference ${diff}`);
  for (const f of faces) {
    assert.ok(f.box.x >= region.left && f.box.x + f.box.width <= region.left + region.width);
    assert.ok(f.box.y >= region.top && f.box.y + f.box.height <= region.top + region.height);
  }
});

test('face crop region contains the boxes: checked against the region the pipeline used', async () => {
  const { faceCropRegion } = await import('./face-crop.js');
  const faces = [
    { box: { x: 1500, y: 100, width: 200, height: 220 }, score: 0.9 },
    { box: { x: 1700, y: 900, width: 150, height: 160 }, score: 0.7 },
  ];
  const region = faceCropRegion(faces, 1920, 1280, 1, 1)!;
  for (const f of faces) {
    assert.ok(f.box.x >= region.left && f.box.y >= region.top);
    assert.ok(f.box.x + f.box.width <= region.left + region.width && f.box.y + f.box.height <= region.top + region.height);
  }
  const { r } = await cropOf(faces);
  assert.deepEqual([r.output.width, r.output.height], [region.width, region.height]);
});

test('no faces, or no detector: falls back to attention (same bytes as attention)', async () => {
  const attention = await processImage(photo(), parseOptions({ crop: { mode: 'attention', aspect: 1 }, format: 'png' }), limits());
  const none = await cropOf([]);
  assert.deepEqual(none.r.data, attention.data);
  const noDetector = await processImage(photo(), parseOptions({ crop: { mode: 'face', aspect: 1 }, format: 'png' }), limits());
  assert.deepEqual(noDetector.data, attention.data);
});
