import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import { applied, jobFor } from '../fixtures.js';
import { sharpen } from './sharpen.js';

test('sharpen steepens a soft edge', async () => {
  // A grey ramp from 80 to 176 across 16 px: sharpening overshoots at its ends.
  const raw = Buffer.alloc(32 * 4);
  for (let x = 0; x < 32; x++) for (let y = 0; y < 4; y++) raw[y * 32 + x] = x < 8 ? 80 : x >= 24 ? 176 : 80 + (x - 8) * 6;
  const img = await sharp(raw, { raw: { width: 32, height: 4, channels: 1 } }).png().toBuffer();
  const spread = async (o: object) => {
    const { channels } = await sharp(await applied(await jobFor(img, o), sharpen)).stats();
    return channels[0]!.max - channels[0]!.min;
  };
  assert.equal(await spread({}), 96);
  assert.ok(await spread({ sharpen: 3 }) > 96);
});
