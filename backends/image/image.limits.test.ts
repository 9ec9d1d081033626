import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import { parseOptions } from './options.js';
import { processImage } from './process.js';
import { ImageError } from './types.js';
import { animated, limits, photo, pngBomb } from './fixtures.js';

const is = (status: number, code: string, field?: string) => (e: unknown) =>
  e instanceof ImageError && e.status === status && e.code === code && (field === undefined || e.field === field);

test('input bytes over the limit: 413 before parsing', async () => {
  const p = photo();
  await assert.rejects(processImage(p, parseOptions({}), limits({ maxInputBytes: p.length - 1 })), is(413, 'payload_too_large'));
});

test('a 1 KB PNG claiming 64000×64000 is refused in < 50 ms of CPU without decoding', async () => {
  const bomb = pngBomb();
  assert.ok(bomb.length < 1024);
  const rssBefore = process.memoryUsage().rss;
  // CPU time, not wall time: a busy machine makes the refusal wait for a core, not cost more of one.
  const cpu0 = process.cpuUsage();
  await assert.rejects(processImage(bomb, parseOptions({ format: 'png' }), limits()), is(413, 'payload_too_large'));
  const cpu = process.cpuUsage(cpu0);
  const ms = (cpu.user + cpu.system) / 1000;
  assert.ok(ms < 50, `took ${ms} ms of CPU`);
  // 64000² RGB would be 12 GB; anything near it means pixels were allocated.
  assert.ok(process.memoryUsage().rss - rssBefore < 200 * 1024 * 1024);
});

test('pixel limit applies to real photos too', async () => {
  await assert.rejects(processImage(photo(), parseOptions({}), limits({ maxInputPixels: 1_000_000 })), is(413, 'payload_too_large'));
});

test('frame limit on animated input', async () => {
  const gif = await animated('gif', 5);
  await assert.rejects(processImage(gif, parseOptions({ format: 'webp' }), limits({ maxFrames: 4 })), is(413, 'payload_too_large'));
  const ok = await processImage(gif, parseOptions({ format: 'webp' }), limits({ maxFrames: 5 }));
  assert.equal((await sharp(ok.data).metadata()).pages, 5);
});

test('requested output over the maximum: 400 naming the field', async () => {
  const l = limits({ maxOutputWidth: 1000, maxOutputHeight: 900 });
  await assert.rejects(processImage(photo(), parseOptions({ resize: { width: 1001 } }), l), is(400, 'bad_request', 'resize.width'));
  await assert.rejects(processImage(photo(), parseOptions({ resize: { height: 901 } }), l), is(400, 'bad_request', 'resize.height'));
  // No resize: the photo (1920 wide) itself would exceed the output maximum.
  await assert.rejects(processImage(photo(), parseOptions({}), l), is(400, 'bad_request', 'resize'));
  // 'outside' can exceed the box it was given.
  await assert.rejects(
    processImage(photo(), parseOptions({ resize: { width: 10, height: 1000, fit: 'outside' } }), limits({ maxOutputWidth: 1000, maxOutputHeight: 1000 })),
    is(400, 'bad_request', 'resize'),
  );
});

test('processing timeout: 504 processing_timeout, quickly', async () => {
  const big = await sharp(photo()).resize(3000).jpeg().toBuffer();
  const t0 = performance.now();
  await assert.rejects(processImage(big, parseOptions({ blur: 300, format: 'png' }), limits({ timeoutMs: 50 })), is(504, 'processing_timeout'));
  assert.ok(performance.now() - t0 < 1000);
});
