import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applied, halves, jobFor, pixel } from '../fixtures.js';
import { blur } from './blur.js';

test('blur mixes the colours across an edge; without it the edge stays hard', async () => {
  const img = await halves(40, 20);
  const [r, , b] = await pixel(await applied(await jobFor(img, { blur: 3 }), blur), 19, 10);
  assert.ok(r > 40 && b > 40, `${r},${b}`);
  assert.deepEqual(await pixel(await applied(await jobFor(img), blur), 19, 10), [255, 0, 0]);
});
