import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applied, checked, jobFor, refused, rgba, solid } from '../fixtures.js';
import { border } from './border.js';
import { padding } from './padding.js';

test('border check: 2 × size on each dimension, outside the padding; refused past the maximum', async () => {
  const img = await solid(40, 20, 0, 0, 0);
  const job = await checked(await jobFor(img, { padding: { left: 4 }, border: { size: 3 } }), padding, border);
  assert.deepEqual(job.size, { width: 50, height: 26 });
  await assert.rejects(checked(await jobFor(img, { border: { size: 20 } }, {}, { maxOutputHeight: 50 }), border), refused(400, 'border.size'));
});

test('border apply: the frame in its colour around the pixels', async () => {
  const out = await applied(await jobFor(await solid(10, 10, 0, 0, 0), { border: { size: 2, color: '#0000ff' } }), border);
  assert.deepEqual(await rgba(out, 0, 0), [0, 0, 255, 255]);
  assert.deepEqual(await rgba(out, 13, 13), [0, 0, 255, 255]);
  assert.deepEqual(await rgba(out, 2, 2), [0, 0, 0, 255]);
});
