import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import { parseOptions } from './options.js';
import { processImage } from './process.js';
import { ImageError } from './types.js';
import { alphaPng, animated, avif, limits, photo } from './fixtures.js';

const SMALL = async () => sharp(photo()).resize(480).jpeg({ quality: 95 }).toBuffer();

test('each output format decodes as what it claims', async () => {
  const src = await SMALL();
  const expect = { jpeg: ['jpeg', 'image/jpeg'], png: ['png', 'image/png'], webp: ['webp', 'image/webp'], avif: ['heif', 'image/avif'], gif: ['gif', 'image/gif'] } as const;
  for (const [format, [decoder, mime]] of Object.entries(expect)) {
    const r = await processImage(src, parseOptions({ format }), limits());
    const m = await sharp(r.data).metadata();
    assert.equal(m.format, decoder, format);
    assert.equal(r.contentType, mime);
    assert.equal(r.output.bytes, r.data.length);
    assert.equal(m.width, 480);
  }
});

// format: auto encodes candidates (image.auto.test.ts); without a format the choice is made from the input.
test('no format: photo → webp, alpha → webp keeping alpha, avif stays avif, animated → animated webp', async () => {
  const photoOut = await processImage(await SMALL(), parseOptions({}), limits());
  assert.equal(photoOut.output.format, 'webp');
  const alphaOut = await processImage(await alphaPng(), parseOptions({}), limits());
  assert.equal(alphaOut.output.format, 'webp');
  assert.equal((await sharp(alphaOut.data).metadata()).hasAlpha, true);
  const avifOut = await processImage(await avif(), parseOptions({}), limits());
  assert.equal(avifOut.contentType, 'image/avif');
  const anim = await processImage(await animated('gif', 4), parseOptions({}), limits());
  assert.equal(anim.output.format, 'webp');
  assert.equal((await sharp(anim.data).metadata()).pages, 4);
  assert.equal(anim.output.height, 32);
});

test('lossless webp round-trips pixels exactly; jpeg cannot be lossless', async () => {
  const src = await alphaPng();
  const r = await processImage(src, parseOptions({ format: 'webp', lossless: true }), limits());
  const a = await sharp(src).raw().toBuffer();
  const b = await sharp(r.data).ensureAlpha().raw().toBuffer();
  assert.deepEqual(b, a);
  await assert.rejects(processImage(src, parseOptions({ format: 'jpeg', lossless: true }), limits()), (e: unknown) => e instanceof ImageError && e.field === 'lossless');
});

test('quality changes size', async () => {
  const src = await SMALL();
  const q30 = await processImage(src, parseOptions({ format: 'jpeg', quality: 30 }), limits());
  const q90 = await processImage(src, parseOptions({ format: 'jpeg', quality: 90 }), limits());
  assert.ok(q30.output.bytes < q90.output.bytes * 0.6);
});

test('optimize levels: valid output, each no larger than the level below', async () => {
  const src = await SMALL();
  for (const format of ['jpeg', 'png', 'webp', 'avif']) {
    const sizes: number[] = [];
    for (const optimize of [undefined, 'lossless', 'low', 'medium', 'high']) {
      const r = await processImage(src, parseOptions({ format, optimize }), limits());
      const m = await sharp(r.data).metadata();
      assert.equal(m.width, 480);
      await sharp(r.data).raw().toBuffer(); // decodes fully
      sizes.push(r.output.bytes);
    }
    for (let i = 1; i < sizes.length; i++) {
      // 1% slack: equal-effort encoders may differ by a few header bytes.
      assert.ok(sizes[i]! <= sizes[i - 1]! * 1.01, `${format}: ${sizes.join(' ')}`);
    }
    assert.ok(sizes[4]! < sizes[0]!, `${format}: high must beat the default (${sizes.join(' ')})`);
  }
});
