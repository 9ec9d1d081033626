import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applied, jobFor, pixel, solid } from '../fixtures.js';
import { adjust } from './adjust.js';

const adjusted = async (img: Buffer, a: object) => pixel(await applied(await jobFor(img, { adjust: a }), adjust), 2, 2);

test('adjust: brightness multiplies, contrast 0 is flat mid-grey, saturation 0 is grey, gamma above 1 brightens', async () => {
  const grey = await solid(4, 4, 100, 100, 100);
  assert.ok((await adjusted(grey, { brightness: 1.5 }))[0] > 130);
  assert.deepEqual(await adjusted(await solid(4, 4, 200, 30, 30), { contrast: 0 }), [128, 128, 128]);
  const [r, g, b] = await adjusted(await solid(4, 4, 200, 40, 90), { saturation: 0 });
  assert.ok(Math.abs(r - g) <= 2 && Math.abs(g - b) <= 2, `${r},${g},${b}`);
  assert.ok((await adjusted(grey, { gamma: 2.2 }))[0] > 120);
});

test('adjust: nothing asked, the pixels are untouched', async () => {
  const img = await solid(4, 4, 10, 20, 30);
  assert.deepEqual(await pixel(await applied(await jobFor(img), adjust), 2, 2), [10, 20, 30]);
});
