import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import sharp from 'sharp';
import { rgbaOnWhite, ssimScore } from '../../test/harness/ssim.js';
import { AUTO_AVIF_QUALITY } from './auto-format.js';
import { alphaPng, animated, limits } from './fixtures.js';
import { parseOptions } from './options.js';
import { processImage } from './process.js';
import type { OptimizeLevel, OutputFormat, ProcessResult } from './types.js';

// format: auto against the candidates encoded one by one, on real photos at the size
// bench:optimize calibrated AUTO_AVIF_QUALITY at (640 px wide).
const DEMO = 'node_modules/@vladmandic/face-api/demo/';
const W = 640;

async function run(input: Buffer, o: Record<string, unknown>, accepted?: OutputFormat[]): Promise<ProcessResult> {
  return processImage(input, parseOptions({ resize: { width: W }, ...o }), limits(), undefined, undefined, accepted === undefined ? undefined : new Set(accepted));
}

function smallest(results: Record<string, ProcessResult>): [string, ProcessResult] {
  return Object.entries(results).reduce((a, b) => (b[1].output.bytes < a[1].output.bytes ? b : a));
}

for (const file of ['sample1.jpg', 'sample4.jpg']) {
  for (const level of [undefined, 'medium'] as (OptimizeLevel | undefined)[]) {
    test(`auto on ${file}, level ${level ?? 'none'}: the smallest of WebP, AVIF and JPEG, scoring at least the level's WebP`, async () => {
      const input = readFileSync(DEMO + file);
      const optimize = level === undefined ? {} : { optimize: level };
      const candidates = {
        webp: await run(input, { format: 'webp', ...optimize }),
        // Auto's AVIF is effort 4 at every level, at its calibrated quality.
        avif: await run(input, { format: 'avif', quality: AUTO_AVIF_QUALITY[level ?? 'none'] }),
        jpeg: await run(input, { format: 'jpeg', ...optimize }),
      };
      const auto = await run(input, { format: 'auto', ...optimize });
      const [format, best] = smallest(candidates);
      assert.equal(auto.output.format, format);
      assert.equal(auto.output.bytes, best.output.bytes);
      assert.equal(auto.contentType, `image/${format}`);
      assert.equal((await sharp(auto.data).metadata()).width, W);

      const ref = await rgbaOnWhite(await sharp(input).rotate().resize({ width: W }).png().toBuffer());
      const target = ssimScore(ref, await rgbaOnWhite(candidates.webp.data));
      const got = ssimScore(ref, await rgbaOnWhite(auto.data));
      assert.ok(got >= target, `auto (${format}) scores ${got}, under the target ${target}`);
    });
  }
}

test('auto keeps to the formats the client accepts', async () => {
  const input = readFileSync(`${DEMO}sample1.jpg`);
  const webp = await run(input, { format: 'webp' });
  const jpeg = await run(input, { format: 'jpeg' });
  const noAvif = await run(input, { format: 'auto' }, ['webp', 'jpeg', 'png', 'gif']);
  const [format, best] = smallest({ webp, jpeg });
  assert.equal(noAvif.output.format, format);
  assert.equal(noAvif.output.bytes, best.output.bytes);
  assert.equal((await run(input, { format: 'auto' }, ['jpeg'])).output.format, 'jpeg');
  // None of the compact formats: PNG when taken.
  assert.equal((await run(input, { format: 'auto' }, ['png'])).output.format, 'png');
});

test('auto with alpha: WebP or AVIF, whichever is smaller, alpha kept; never JPEG', async () => {
  const input = await alphaPng(256);
  const o = (format: string) => processImage(input, parseOptions({ format }), limits());
  const [format, best] = smallest({ webp: await o('webp'), avif: await processImage(input, parseOptions({ format: 'avif', quality: AUTO_AVIF_QUALITY.none }), limits()) });
  const auto = await o('auto');
  assert.equal(auto.output.format, format);
  assert.equal(auto.output.bytes, best.output.bytes);
  assert.equal((await sharp(auto.data).metadata()).hasAlpha, true);
  const jpegOnly = await processImage(input, parseOptions({ format: 'auto' }), limits(), undefined, undefined, new Set(['jpeg']));
  assert.notEqual(jpegOnly.output.format, 'jpeg');
});

test('auto on a palette graphic: lossless, the smaller of WebP and PNG, the same pixels', async () => {
  const bars = Array.from({ length: 8 }, (_, i) => `<rect x="${20 + i * 40}" y="${240 - i * 25}" width="30" height="${i * 25 + 10}" fill="${['#e4572e', '#29335c', '#f3a712', '#a8c686'][i % 4]}"/>`).join('');
  const input = await sharp(Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="360" height="260"><rect width="360" height="260" fill="#fff"/>${bars}</svg>`)).png({ palette: true }).toBuffer();
  assert.equal((await sharp(input).metadata()).isPalette, true);
  const auto = await processImage(input, parseOptions({ format: 'auto' }), limits());
  const webp = await processImage(input, parseOptions({ format: 'webp', lossless: true }), limits());
  const png = await processImage(input, parseOptions({ format: 'png', optimize: 'lossless' }), limits());
  const [format, best] = smallest({ webp, png });
  assert.equal(auto.output.format, format);
  assert.equal(auto.output.bytes, best.output.bytes);
  const pixels = (b: Buffer) => sharp(b).removeAlpha().raw().toBuffer();
  assert.deepEqual(await pixels(auto.data), await pixels(input));
});

test('auto on an animation: animated WebP, or GIF for a client taking only GIF', async () => {
  const input = await animated('gif', 4);
  const webp = await processImage(input, parseOptions({ format: 'auto' }), limits());
  assert.equal(webp.output.format, 'webp');
  assert.equal((await sharp(webp.data).metadata()).pages, 4);
  const gif = await processImage(input, parseOptions({ format: 'auto' }), limits(), undefined, undefined, new Set(['gif', 'jpeg']));
  assert.equal(gif.output.format, 'gif');
  assert.equal((await sharp(gif.data).metadata()).pages, 4);
});

test('lossless PNG: an opaque alpha channel is dropped, pixels unchanged, no larger than either filter setting alone', async () => {
  const rgb = await sharp(readFileSync(`${DEMO}sample2.jpg`)).resize({ width: 320 }).raw().toBuffer({ resolveWithObject: true });
  const input = await sharp(rgb.data, { raw: rgb.info }).ensureAlpha().png().toBuffer();
  assert.equal((await sharp(input).metadata()).channels, 4);
  const out = await processImage(input, parseOptions({ format: 'png', optimize: 'lossless' }), limits());
  assert.equal((await sharp(out.data).metadata()).channels, 3);
  assert.deepEqual(await sharp(out.data).raw().toBuffer(), rgb.data);
  for (const adaptiveFiltering of [true, false]) {
    const single = await sharp(input).png({ compressionLevel: 9, adaptiveFiltering }).toBuffer();
    assert.ok(out.output.bytes <= single.length, `${out.output.bytes} > ${single.length} (adaptiveFiltering ${adaptiveFiltering})`);
  }
  // Real transparency stays.
  const alpha = await processImage(await alphaPng(), parseOptions({ format: 'png', optimize: 'lossless' }), limits());
  assert.deepEqual(await sharp(alpha.data).ensureAlpha().raw().toBuffer(), await sharp(await alphaPng()).ensureAlpha().raw().toBuffer());
});
