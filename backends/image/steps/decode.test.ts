import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import { animated, checked, halves, jobFor, refused } from '../fixtures.js';
import { decode, openDecoder } from './decode.js';

test('decode check: too many frames and too many pixels are refused from the header', async () => {
  await assert.rejects(checked(await jobFor(await animated('gif', 3), {}, {}, { maxFrames: 2 }), decode), refused(413));
  // An animation counts every frame's pixels only when its frames are all kept.
  const frames = await animated('gif', 4, 32);
  await assert.rejects(checked(await jobFor(frames, { format: 'webp' }, {}, { maxInputPixels: 32 * 32 * 3 }), decode), refused(413));
  await checked(await jobFor(frames, { format: 'png' }, {}, { maxInputPixels: 32 * 32 * 3 }), decode);
});

test('decode opens every frame of an animated output, one of a still one', async () => {
  const frames = await animated('gif', 3, 16);
  const all = await openDecoder(await jobFor(frames, { format: 'webp' })).webp().toBuffer();
  assert.equal((await sharp(all).metadata()).pages, 3);
  const one = await openDecoder(await jobFor(frames, { format: 'png' })).png().toBuffer();
  assert.equal((await sharp(one).metadata()).height, 16);
  const still = await openDecoder(await jobFor(await halves(8, 4))).png().toBuffer();
  assert.deepEqual([(await sharp(still).metadata()).width, (await sharp(still).metadata()).height], [8, 4]);
});
