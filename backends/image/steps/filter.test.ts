import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applied, jobFor, pixel, solid } from '../fixtures.js';
import { filter } from './filter.js';

const filtered = async (f: object) => pixel(await applied(await jobFor(await solid(4, 4, 200, 40, 90), { filter: f }), filter), 2, 2);

test('filter: negate inverts, grayscale is r = g = b, sepia is warm', async () => {
  assert.deepEqual(await filtered({ negate: true }), [55, 215, 165]);
  const [r, g, b] = await filtered({ grayscale: true });
  assert.ok(r === g && g === b);
  const [sr, sg, sb] = await filtered({ sepia: true });
  assert.ok(sr > sg && sg > sb, `${sr},${sg},${sb}`);
  assert.deepEqual(await filtered({}), [200, 40, 90]);
});
