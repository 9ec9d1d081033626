import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import { parseOptions } from './options.js';
import { mapRect } from './geometry.js';
import { processImage } from './process.js';
import { exifRotated, halves, isBlue, isRed, limits, photo, pixel } from './fixtures.js';

const png = (o: object) => parseOptions({ ...o, format: 'png' });

test('EXIF orientation is applied and the tag dropped', async () => {
  const img = await exifRotated(); // stored 40×20, displays 20×40 with red on top
  const r = await processImage(img, png({}), limits());
  assert.deepEqual([r.output.width, r.output.height], [20, 40]);
  assert.deepEqual([r.input.width, r.input.height], [20, 40]);
  assert.ok(isRed(await pixel(r.data, 10, 2)));
  assert.ok(isBlue(await pixel(r.data, 10, 37)));
  assert.equal((await sharp(r.data).metadata()).orientation, undefined);
});

test('rotate 90 turns clockwise: left (red) goes to the top', async () => {
  const r = await processImage(await halves(40, 20), png({ rotate: 90 }), limits());
  assert.deepEqual([r.output.width, r.output.height], [20, 40]);
  assert.ok(isRed(await pixel(r.data, 10, 2)));
  assert.ok(isBlue(await pixel(r.data, 10, 37)));
});

test('flop mirrors left-right, flip top-bottom', async () => {
  const f = await processImage(await halves(40, 20), png({ flop: true }), limits());
  assert.ok(isBlue(await pixel(f.data, 1, 10)));
  const v = await processImage(await exifRotated(), png({ flip: true }), limits());
  assert.ok(isBlue(await pixel(v.data, 10, 2)));
});

test('crop rectangle is in the displayed frame even with rotate', async () => {
  // Take the right (blue) half of the original, then rotate: still all blue.
  const r = await processImage(await halves(40, 20), png({ crop: { x: 20, y: 0, width: 20, height: 20 }, rotate: 90, resize: { width: 10 } }), limits());
  assert.deepEqual([r.output.width, r.output.height], [10, 10]);
  assert.ok(isBlue(await pixel(r.data, 5, 5)));
  const l = await processImage(await halves(40, 20), png({ crop: { x: 0, y: 0, width: 20, height: 20 }, rotate: 270, flip: true, resize: { width: 10 } }), limits());
  assert.ok(isRed(await pixel(l.data, 5, 5)));
});

test('mapRect matches sharp for every rotation', async () => {
  const w = 40;
  const h = 20;
  const rect = { left: 3, top: 2, width: 10, height: 5 };
  for (const angle of [0, 90, 180, 270]) {
    for (const flip of [false, true]) {
      // Mark the rect white on black, transform with sharp, find the white box.
      const img = await sharp({ create: { width: w, height: h, channels: 3, background: '#000' } })
        .composite([{ input: { create: { width: rect.width, height: rect.height, channels: 3, background: '#fff' } }, left: rect.left, top: rect.top }])
        .png().toBuffer();
      const { data, info } = await sharp(img).rotate(angle).flip(flip).raw().toBuffer({ resolveWithObject: true });
      let x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1;
      for (let y = 0; y < info.height; y++) for (let x = 0; x < info.width; x++) {
        if (data[(y * info.width + x) * info.channels]! > 128) { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y); }
      }
      assert.deepEqual(mapRect(rect, w, h, flip, false, angle), { left: x0, top: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 }, `angle ${angle} flip ${flip}`);
    }
  }
});

test('blur smooths and sharpen adds edge contrast', async () => {
  const src = await sharp(photo()).resize(320).jpeg().toBuffer();
  const stdevOfLaplacian = async (b: Buffer) => {
    const edges = await sharp(b).greyscale().convolve({ width: 3, height: 3, kernel: [0, 1, 0, 1, -4, 1, 0, 1, 0], offset: 128 }).raw().toBuffer();
    let s = 0; for (const v of edges) s += (v - 128) ** 2; return Math.sqrt(s / edges.length);
  };
  const plain = await stdevOfLaplacian((await processImage(src, png({}), limits())).data);
  const blurred = await stdevOfLaplacian((await processImage(src, png({ blur: 3 }), limits())).data);
  const sharp_ = await stdevOfLaplacian((await processImage(src, png({ sharpen: 2 }), limits())).data);
  assert.ok(blurred < plain * 0.6, `blur ${blurred} vs ${plain}`);
  assert.ok(sharp_ > plain * 1.1, `sharpen ${sharp_} vs ${plain}`);
});

test('metadata stripped by default, kept with strip:false', async () => {
  const src = await sharp(photo()).resize(200).withMetadata({ exif: { IFD0: { Copyright: 'someone', Artist: 'me' } } }).jpeg().toBuffer();
  assert.ok((await sharp(src).metadata()).exif, 'fixture has EXIF');
  const stripped = await processImage(src, parseOptions({ format: 'jpeg' }), limits());
  const m = await sharp(stripped.data).metadata();
  assert.equal(m.exif, undefined);
  assert.equal(m.xmp, undefined);
  assert.equal(stripped.data.includes('someone'), false);
  const kept = await processImage(src, parseOptions({ format: 'jpeg', strip: false }), limits());
  assert.ok(kept.data.includes('someone'));
});
