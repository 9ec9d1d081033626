import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applied, checked, jobFor, refused, rgba, solid } from '../fixtures.js';
import { padding } from './padding.js';

test('padding check: adds to the planned size, refused past the maximum', async () => {
  const img = await solid(40, 20, 0, 0, 0);
  const job = await checked(await jobFor(img, { padding: { top: 1, right: 2, bottom: 3, left: 4 } }), padding);
  assert.deepEqual(job.size, { width: 46, height: 24 });
  await assert.rejects(checked(await jobFor(img, { padding: { left: 30 } }, {}, { maxOutputWidth: 60 }), padding), refused(400, 'padding'));
});

test('padding apply: transparent where the format has alpha, white for JPEG, or the colour asked', async () => {
  const img = await solid(10, 10, 0, 0, 0);
  const side = { padding: { left: 5 } };
  assert.equal((await rgba(await applied(await jobFor(img, { ...side, format: 'png' }), padding), 1, 5))[3], 0);
  assert.deepEqual(await rgba(await applied(await jobFor(img, { ...side, format: 'jpeg' }), padding), 1, 5), [255, 255, 255, 255]);
  assert.deepEqual(await rgba(await applied(await jobFor(img, { padding: { left: 5, color: '#00ff00' } }), padding), 1, 5), [0, 255, 0, 255]);
  assert.deepEqual(await rgba(await applied(await jobFor(img, side), padding), 10, 5), [0, 0, 0, 255]);
});
