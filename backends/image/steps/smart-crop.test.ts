import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import { checked, halves, jobFor, refused } from '../fixtures.js';
import { ImageError, type Detection } from '../types.js';
import { crop } from './crop.js';
import { orient } from './orient.js';
import { smartCrop } from './smart-crop.js';

const plan = async (img: Buffer, o: object, detect?: () => Promise<Detection>) =>
  checked(await jobFor(img, o, { detectFaces: detect }), orient, crop, smartCrop);

test('smart crop: to an aspect, a cover resize of the largest box, never enlarged unless asked', async () => {
  const img = await halves(40, 20);
  assert.equal((await plan(img, {})).resize, undefined);
  const square = await plan(img, { crop: { mode: 'attention', aspect: 1 } });
  assert.deepEqual(square.resize, { width: 20, height: 20, fit: 'cover', position: sharp.strategy.attention });
  const east = await plan(img, { crop: { gravity: 'east', aspect: 1 } });
  assert.equal(east.resize?.position, 'east');
  const shrunk = await plan(img, { crop: { mode: 'entropy' }, resize: { width: 80, height: 80 } });
  assert.deepEqual([shrunk.resize?.width, shrunk.resize?.height], [20, 20]);
  const scaled = await plan(img, { crop: { mode: 'center', aspect: 1 }, scale: { percent: 50 } });
  assert.deepEqual([scaled.resize?.width, scaled.resize?.height], [10, 10]);
});

test('smart crop: what it cannot honour names the field', async () => {
  const img = await halves(40, 20);
  await assert.rejects(plan(img, { crop: { mode: 'attention' } }), refused(400, 'crop.aspect'));
  await assert.rejects(plan(img, { crop: { mode: 'attention', aspect: 1 }, resize: { width: 10, height: 10 } }), refused(400, 'crop.aspect'));
  await assert.rejects(plan(img, { crop: { mode: 'attention' }, resize: { width: 10, height: 10, fit: 'contain' } }), refused(400, 'resize.fit'));
});

test('smart crop by face: cuts around the faces in the displayed frame; a broken detector is 503', async () => {
  const img = await halves(90, 30);
  const faces: Detection = { width: 90, height: 30, faces: [{ box: { x: 62, y: 5, width: 20, height: 20 }, score: 0.9 }] };
  const job = await plan(img, { crop: { gravity: 'face', aspect: 1 } }, async () => faces);
  assert.ok(job.extract !== undefined && job.extract.left + job.extract.width >= 82 && job.extract.left <= 62, JSON.stringify(job.extract));
  assert.equal(job.resize?.position, 'centre');
  // No face found: the documented fallback, attention.
  const none = await plan(img, { crop: { mode: 'face', aspect: 1 } }, async () => ({ width: 90, height: 30, faces: [] }));
  assert.equal(none.extract, undefined);
  assert.equal(none.resize?.position, sharp.strategy.attention);
  await assert.rejects(plan(img, { crop: { mode: 'face', aspect: 1 } }, async () => { throw new Error('worker died'); }),
    (e: unknown) => e instanceof ImageError && e.status === 503 && e.code === 'unavailable');
});
