import assert from 'node:assert/strict';
import { test } from 'node:test';
import { animated, applied, checked, jobFor, refused, rgba, solid } from '../fixtures.js';
import { mask } from './mask.js';

test('mask ellipse: the corners are cleared, the centre kept', async () => {
  const out = await applied(await jobFor(await solid(40, 20, 200, 0, 0), { mask: { shape: 'ellipse' } }), mask);
  assert.equal((await rgba(out, 0, 0))[3], 0);
  assert.deepEqual(await rgba(out, 20, 10), [200, 0, 0, 255]);
  await assert.rejects(checked(await jobFor(await animated('webp', 2), { mask: { shape: 'ellipse' } }), mask), refused(400, 'mask'));
});
