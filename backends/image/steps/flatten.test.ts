import assert from 'node:assert/strict';
import { test } from 'node:test';
import { alphaPng, applied, checked, jobFor, rgba, solid } from '../fixtures.js';
import { flatten } from './flatten.js';
import { padding } from './padding.js';

test('flatten: transparent pixels go onto white for JPEG only', async () => {
  const img = await alphaPng(16);
  assert.deepEqual(await rgba(await applied(await jobFor(img, { format: 'jpeg' }), flatten), 0, 0), [255, 255, 255, 255]);
  assert.equal((await rgba(await applied(await jobFor(img, { format: 'png' }), flatten), 0, 0))[3], 0);
});

test('flatten sees what a compositing step made transparent', async () => {
  const job = await checked(await jobFor(await solid(10, 10, 0, 0, 0), { format: 'jpeg', padding: { left: 4, color: '#00000000' } }), padding);
  assert.deepEqual(await rgba(await applied(job, padding, flatten), 1, 5), [255, 255, 255, 255]);
});
