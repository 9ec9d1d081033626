import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import { applied, checked, halves, jobFor, refused, rgba } from '../fixtures.js';
import { crop } from './crop.js';
import { orient } from './orient.js';
import { predictSize, resize } from './resize.js';
import { smartCrop } from './smart-crop.js';

const plan = async (o: object, over = {}) => checked(await jobFor(await halves(40, 20), o, {}, over), orient, crop, smartCrop, resize);

test('resize check: plans the output size as sharp will make it', async () => {
  assert.deepEqual((await plan({ resize: { width: 10 } })).size, { width: 10, height: 5 });
  assert.deepEqual((await plan({ resize: { width: 80, fit: 'inside' } })).size, { width: 40, height: 20 }, 'no enlargement unless asked');
  assert.deepEqual((await plan({ resize: { width: 80, fit: 'inside', upscale: true } })).size, { width: 80, height: 40 });
  assert.deepEqual((await plan({ resize: { width: 10, height: 10, fit: 'inside' } })).size, { width: 10, height: 5 });
  assert.deepEqual((await plan({ scale: { percent: 250 } })).size, { width: 100, height: 50 });
  assert.deepEqual((await plan({ scale: { percent: 50 } })).resize, { width: 20, height: 10, fit: 'fill' });
  assert.equal((await plan({})).resize, undefined);
});

test('resize check: output past the maximum names the option', async () => {
  await assert.rejects(plan({ resize: { width: 9000 } }), refused(400, 'resize.width'));
  await assert.rejects(plan({ resize: { width: 30, upscale: true } }, { maxOutputWidth: 20 }), refused(400, 'resize.width'));
  await assert.rejects(plan({ scale: { percent: 300 } }, { maxOutputWidth: 100 }), refused(400, 'scale.percent'));
});

test('predictSize matches sharp', async () => {
  const img = await halves(40, 20);
  for (const r of [{ width: 30, height: 30, fit: 'inside' }, { width: 30, height: 30, fit: 'outside' }, { width: 30, height: 7, fit: 'cover' }, { height: 7 }] as const) {
    const meta = await sharp(await sharp(img).resize(r).toBuffer()).metadata();
    assert.deepEqual(predictSize({ width: 40, height: 20 }, r, true), { width: meta.width, height: meta.height }, JSON.stringify(r));
  }
});

test('resize apply: contain pads transparent where the format has alpha, white in JPEG', async () => {
  const contain = { resize: { width: 40, height: 40, fit: 'contain' } };
  const png = await plan({ ...contain, format: 'png' });
  assert.equal((await rgba(await applied(png, resize), 20, 2))[3], 0);
  const jpeg = await plan({ ...contain, format: 'jpeg' });
  assert.deepEqual(await rgba(await applied(jpeg, resize), 20, 2), [255, 255, 255, 255]);
});
