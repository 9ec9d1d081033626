import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import { jobFor, photo } from '../fixtures.js';
import { openDecoder } from './decode.js';
import { metadata } from './metadata.js';

test('metadata: stripped by default, kept (with an sRGB profile) with strip: false', async () => {
  const img = await sharp(photo()).resize(64).withExif({ IFD0: { Copyright: 'sluice test' } }).jpeg().toBuffer();
  const out = async (o: object) => {
    const job = await jobFor(img, o);
    return sharp(await (await metadata.apply!(openDecoder(job), job)).jpeg().toBuffer()).metadata();
  };
  assert.equal((await out({})).exif, undefined);
  const kept = await out({ strip: false });
  assert.ok(kept.exif?.includes('sluice test'));
  assert.ok(kept.icc !== undefined);
});
