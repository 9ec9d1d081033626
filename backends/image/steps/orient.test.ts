import assert from 'node:assert/strict';
import { test } from 'node:test';
import { animated, applied, checked, exifRotated, halves, isBlue, isRed, jobFor, pixel, refused } from '../fixtures.js';
import { orient, toPipelineFrame } from './orient.js';

test('orient check: a quarter turn swaps the planned size; an animation only turns by 180', async () => {
  assert.deepEqual((await checked(await jobFor(await halves(40, 20), { rotate: 90 }), orient)).size, { width: 20, height: 40 });
  assert.deepEqual((await checked(await jobFor(await halves(40, 20), { rotate: 180 }), orient)).size, { width: 40, height: 20 });
  // EXIF orientation 6 is the displayed frame already: 20 × 40.
  assert.deepEqual((await checked(await jobFor(await exifRotated()), orient)).oriented, { width: 20, height: 40 });
  await assert.rejects(checked(await jobFor(await animated('gif', 2), { rotate: 270 }), orient), refused(400, 'rotate'));
});

test('orient apply: rotate is clockwise, flop mirrors left-right', async () => {
  // 40×20, left red, right blue.
  const turned = await applied(await jobFor(await halves(40, 20), { rotate: 90 }), orient);
  assert.ok(isRed(await pixel(turned, 10, 5)) && isBlue(await pixel(turned, 10, 35)));
  const mirrored = await applied(await jobFor(await halves(40, 20), { flop: true }), orient);
  assert.ok(isBlue(await pixel(mirrored, 5, 10)) && isRed(await pixel(mirrored, 35, 10)));
});

test('toPipelineFrame: a rectangle of the displayed frame after the client\'s rotation', async () => {
  const r = { left: 0, top: 0, width: 10, height: 5 };
  assert.deepEqual(toPipelineFrame(await jobFor(await halves(40, 20)), r), r);
  assert.deepEqual(toPipelineFrame(await jobFor(await halves(40, 20), { rotate: 90 }), r), { left: 15, top: 0, width: 5, height: 10 });
});
