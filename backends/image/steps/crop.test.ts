import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applied, checked, halves, isBlue, jobFor, pixel, refused } from '../fixtures.js';
import { crop } from './crop.js';
import { orient } from './orient.js';

const rect = (x: number, y: number, width: number, height: number) => ({ crop: { x, y, width, height } });

test('crop check: the rectangle must lie in the displayed image; it sets the extract and the size', async () => {
  const img = await halves(40, 20);
  await assert.rejects(checked(await jobFor(img, rect(30, 0, 20, 5)), orient, crop), refused(400, 'crop.width'));
  await assert.rejects(checked(await jobFor(img, rect(0, 25, 5, 5)), orient, crop), refused(400, 'crop.y'));
  const job = await checked(await jobFor(img, rect(30, 5, 10, 10)), orient, crop);
  assert.deepEqual(job.extract, { left: 30, top: 5, width: 10, height: 10 });
  assert.deepEqual(job.size, { width: 10, height: 10 });
  // With a rotation, the rectangle is still in the displayed frame, cut after the turn.
  const turned = await checked(await jobFor(img, { ...rect(30, 5, 10, 5), rotate: 90 }), orient, crop);
  assert.deepEqual(turned.extract, { left: 10, top: 30, width: 5, height: 10 });
  assert.equal((await checked(await jobFor(img), orient, crop)).extract, undefined);
});

test('crop apply: cuts the planned rectangle', async () => {
  const job = await checked(await jobFor(await halves(40, 20), rect(30, 5, 10, 10)), orient, crop);
  const out = await applied(job, orient, crop);
  assert.ok(isBlue(await pixel(out, 5, 5)));
});
