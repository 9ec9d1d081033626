import assert from 'node:assert/strict';
import { test } from 'node:test';
import { animated, applied, checked, jobFor, pixel, refused, solid } from '../fixtures.js';
import type { WatermarkSource } from '../types.js';
import { watermark } from './watermark.js';

const source = (marks: Record<string, Buffer>): WatermarkSource => async (id) => marks[id];

test('watermark check: refused on an animation and with strip: false; marks the job composited', async () => {
  await assert.rejects(checked(await jobFor(await animated('gif', 2), { watermark: { id: 'logo' } }), watermark), refused(400, 'watermark'));
  await assert.rejects(checked(await jobFor(await solid(8, 8, 0, 0, 0), { watermark: { id: 'logo' }, strip: false }), watermark), refused(400, 'strip'));
  assert.equal((await checked(await jobFor(await solid(8, 8, 0, 0, 0), { watermark: { id: 'logo' } }), watermark)).composited, true);
  assert.equal((await checked(await jobFor(await solid(8, 8, 0, 0, 0)), watermark)).composited, false);
});

test('watermark apply: the mark at its compass point, scaled to a fraction of the width', async () => {
  const marks = source({ logo: await solid(10, 10, 255, 255, 255) });
  const job = await jobFor(await solid(40, 40, 0, 0, 0), { watermark: { id: 'logo', gravity: 'northwest', scale: 0.5 } }, { watermarks: marks });
  const out = await applied(job, watermark);
  assert.deepEqual(await pixel(out, 5, 5), [255, 255, 255]);
  assert.deepEqual(await pixel(out, 19, 19), [255, 255, 255]);
  assert.deepEqual(await pixel(out, 21, 21), [0, 0, 0]);
  const missing = await jobFor(await solid(40, 40, 0, 0, 0), { watermark: { id: 'other' } }, { watermarks: marks });
  await assert.rejects(applied(missing, watermark), refused(400, 'watermark.id'));
});
