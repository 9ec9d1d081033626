import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import { applied, jobFor } from '../fixtures.js';
import { enhance } from './enhance.js';

test('enhance stretches a low-contrast image to the full range; off, it leaves it', async () => {
  const raw = Buffer.alloc(16 * 16 * 3);
  for (let i = 0; i < raw.length; i += 3) raw.fill(i % 2 === 0 ? 100 : 140, i, i + 3);
  const img = await sharp(raw, { raw: { width: 16, height: 16, channels: 3 } }).png().toBuffer();
  const range = async (o: object) => {
    const { channels } = await sharp(await applied(await jobFor(img, o), enhance)).stats();
    return [channels[0]!.min, channels[0]!.max];
  };
  assert.deepEqual(await range({}), [100, 140]);
  const [min, max] = await range({ auto: { enhance: true } });
  assert.ok(min < 20 && max > 235, `${min}..${max}`);
});
