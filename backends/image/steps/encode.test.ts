import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import { alphaPng, checked, jobFor, photo, refused } from '../fixtures.js';
import { openDecoder } from './decode.js';
import { encode, encodeOutput } from './encode.js';

test('encode check: options the encoder would ignore are refused, naming the field', async () => {
  const img = await alphaPng(16);
  await assert.rejects(checked(await jobFor(img, { format: 'jpeg', lossless: true }), encode), refused(400, 'lossless'));
  await assert.rejects(checked(await jobFor(img, { format: 'webp', output: { encoding: 'progressive' } }), encode), refused(400, 'output.encoding'));
  await assert.rejects(checked(await jobFor(img, { format: 'png', output: { chroma_subsampling: '4:4:4' } }), encode), refused(400, 'output.chroma_subsampling'));
  await checked(await jobFor(img, { format: 'jpeg', output: { encoding: 'progressive', chroma_subsampling: '4:4:4' } }), encode);
});

test('encode: the format asked, or for auto the smallest the client accepts', async () => {
  const img = await sharp(photo()).resize(128).jpeg().toBuffer();
  const out = async (o: object, accepted?: string[]) => {
    const job = await jobFor(img, o, { accepted: accepted === undefined ? undefined : new Set(accepted as never[]) });
    return encodeOutput(openDecoder(job), job);
  };
  const png = await out({ format: 'png' });
  assert.equal(png.format, 'png');
  assert.equal(png.contentType, 'image/png');
  assert.equal((await sharp(png.data).metadata()).format, 'png');
  const auto = await out({ format: 'auto' }, ['jpeg', 'webp']);
  assert.ok(auto.format === 'jpeg' || auto.format === 'webp');
  const [jpeg, webp] = await Promise.all([out({ format: 'jpeg' }), out({ format: 'webp' })]);
  assert.ok(auto.data.length <= Math.max(jpeg.data.length, webp.data.length));
  assert.equal((await out({ format: 'auto' }, ['jpeg'])).format, 'jpeg');
});
