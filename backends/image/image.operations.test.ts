import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import { parseOptions } from './options.js';
import { processImage } from './process.js';
import { JP2_SUPPORTED } from './steps/encode.js';
import { ImageError, type Detection, type WatermarkSource } from './types.js';
import { halves, isBlue, isRed, limits, photo, pixel, rgba, solid } from './fixtures.js';

// The modelled API's operations on real images: every test checks the output size and
// the pixels, not only that something came back.

const run = (img: Buffer, o: object, wm?: WatermarkSource, faces?: Detection) =>
  processImage(img, parseOptions(o), limits(), faces === undefined ? undefined : async () => faces, wm);

test('scale: {percent} scales both sides, above 100 enlarges', async () => {
  const half = await run(await halves(40, 20), { scale: { percent: 50 }, format: 'png' });
  assert.deepEqual([half.output.width, half.output.height], [20, 10]);
  assert.ok(isRed(await pixel(half.data, 2, 5)) && isBlue(await pixel(half.data, 17, 5)));
  const big = await run(await halves(40, 20), { scale: { percent: 250 }, format: 'png' });
  assert.deepEqual([big.output.width, big.output.height], [100, 50]);
});

test('resize gravity picks the kept side of a cover crop', async () => {
  const west = await run(await halves(40, 20), { resize: { width: 10, height: 20, gravity: 'west' }, format: 'png' });
  assert.deepEqual([west.output.width, west.output.height], [10, 20]);
  assert.ok(isRed(await pixel(west.data, 5, 10)));
  const east = await run(await halves(40, 20), { resize: { width: 10, height: 20, gravity: 'east' }, format: 'png' });
  assert.ok(isBlue(await pixel(east.data, 5, 10)));
  const crop = await run(await halves(40, 20), { crop: { gravity: 'east', aspect: 1 }, format: 'png' });
  assert.deepEqual([crop.output.width, crop.output.height], [20, 20]);
  assert.ok(isBlue(await pixel(crop.data, 2, 10)));
});

test('gravity face keeps the most prominent face, faces keeps all, none falls back to centre', async () => {
  // 90×30: red left third, blue right third, white middle.
  const raw = Buffer.alloc(90 * 30 * 3, 255);
  for (let y = 0; y < 30; y++) for (let x = 0; x < 90; x++) {
    const i = (y * 90 + x) * 3;
    if (x < 30) { raw[i + 1] = 0; raw[i + 2] = 0; } else if (x >= 60) { raw[i] = 0; raw[i + 1] = 0; }
  }
  const img = await sharp(raw, { raw: { width: 90, height: 30, channels: 3 } }).png().toBuffer();
  const faces: Detection = {
    width: 90, height: 30,
    faces: [{ box: { x: 62, y: 5, width: 20, height: 20 }, score: 0.9 }, { box: { x: 5, y: 10, width: 10, height: 10 }, score: 0.9 }],
  };
  const one = await run(img, { crop: { gravity: 'face', aspect: 1 }, format: 'png' }, undefined, faces);
  assert.deepEqual([one.output.width, one.output.height], [30, 30]);
  assert.ok(isBlue(await pixel(one.data, 15, 15)), 'the bigger (right, blue) face');
  const viaResize = await run(img, { resize: { width: 15, height: 15, gravity: 'face' }, format: 'png' }, undefined, faces);
  assert.deepEqual([viaResize.output.width, viaResize.output.height], [15, 15]);
  assert.ok(isBlue(await pixel(viaResize.data, 7, 7)));
  const all = await run(img, { crop: { gravity: 'faces', aspect: 3 }, format: 'png' }, undefined, faces);
  assert.deepEqual([all.output.width, all.output.height], [90, 30]);
  const none = await run(img, { crop: { gravity: 'face', aspect: 1 }, format: 'png' }, undefined, { width: 90, height: 30, faces: [] });
  const [r, g, b] = await pixel(none.data, 15, 15);
  assert.ok(r > 240 && g > 240 && b > 240, 'centre (white) third');
});

test('filter: grayscale gives r == g == b, negate inverts, sepia tones', async () => {
  const src = await solid(8, 8, 200, 40, 90);
  const gray = await run(src, { filter: { grayscale: true }, format: 'png' });
  const [r, g, b] = await pixel(gray.data, 4, 4);
  assert.ok(r === g && g === b, `gray ${r},${g},${b}`);
  const neg = await run(src, { filter: { negate: true }, format: 'png' });
  assert.deepEqual(await pixel(neg.data, 4, 4), [55, 215, 165]);
  const same = await run(src, { filter: { negate: false }, format: 'png' });
  assert.deepEqual(await pixel(same.data, 4, 4), [200, 40, 90]);
  const sepia = await run(src, { filter: { sepia: true }, format: 'png' });
  const [sr, sg, sb] = await pixel(sepia.data, 4, 4);
  assert.ok(sr > sg && sg > sb, `sepia ${sr},${sg},${sb}`);
});

test('filter blur and sharpen change edge pixels; they are the top-level blur/sharpen', async () => {
  const src = await halves(40, 20);
  const blurred = await run(src, { filter: { blur: 3 }, format: 'png' });
  const [r, , b] = await pixel(blurred.data, 20, 10);
  assert.ok(r > 40 && b > 40, 'the edge mixes red and blue');
  const sharp1 = await run(await sharp(photo()).resize(200).png().toBuffer(), { filter: { sharpen: 2 }, format: 'png' });
  const plain = await run(await sharp(photo()).resize(200).png().toBuffer(), { format: 'png' });
  assert.notDeepEqual(await sharp(sharp1.data).raw().toBuffer(), await sharp(plain.data).raw().toBuffer());
});

test('adjust: brightness, contrast, saturation, gamma, hue move pixels the right way', async () => {
  const src = await solid(8, 8, 100, 100, 100);
  const bright = await pixel((await run(src, { adjust: { brightness: 1.5 }, format: 'png' })).data, 4, 4);
  assert.ok(bright[0] > 130, `brightness ${bright}`);
  const flat = await pixel((await run(await solid(8, 8, 200, 200, 200), { adjust: { contrast: 0 }, format: 'png' })).data, 4, 4);
  assert.deepEqual(flat, [128, 128, 128]);
  const gamma = await pixel((await run(src, { adjust: { gamma: 2.2 }, format: 'png' })).data, 4, 4);
  assert.ok(gamma[0] > 150, `gamma ${gamma}`);
  const desat = await pixel((await run(await solid(8, 8, 200, 40, 90), { adjust: { saturation: 0 }, format: 'png' })).data, 4, 4);
  assert.ok(Math.max(...desat) - Math.min(...desat) <= 2, `saturation 0 ${desat}`);
  const hue = await pixel((await run(await solid(8, 8, 220, 20, 20), { adjust: { hue: 120 }, format: 'png' })).data, 4, 4);
  assert.ok(hue[1] > hue[0] && hue[1] > hue[2], `hue 120 turns red green ${hue}`);
  const unsharp = await run(await halves(40, 20), { adjust: { unsharp: 1 }, format: 'png' });
  assert.deepEqual([unsharp.output.width, unsharp.output.height], [40, 20]);
});

test('auto.enhance stretches a low-contrast image to the full range', async () => {
  const raw = Buffer.alloc(16 * 16 * 3);
  for (let i = 0; i < raw.length; i += 3) raw.fill(i < raw.length / 2 ? 100 : 140, i, i + 3);
  const src = await sharp(raw, { raw: { width: 16, height: 16, channels: 3 } }).png().toBuffer();
  const r = await run(src, { auto: { enhance: true }, format: 'png' });
  const dark = await pixel(r.data, 0, 0);
  const light = await pixel(r.data, 15, 15);
  assert.ok(dark[0] < 20 && light[0] > 235, `${dark} … ${light}`);
});

test('border adds 2 × size to each dimension, in its colour', async () => {
  const r = await run(await halves(40, 20), { border: { size: 5, color: '#00ff00' }, format: 'png' });
  assert.deepEqual([r.output.width, r.output.height], [50, 30]);
  assert.deepEqual(await pixel(r.data, 0, 0), [0, 255, 0]);
  assert.deepEqual(await pixel(r.data, 49, 29), [0, 255, 0]);
  assert.ok(isRed(await pixel(r.data, 6, 15)));
});

test('padding: transparent where the format allows, white in JPEG, or the given colour', async () => {
  const p = await run(await halves(40, 20), { padding: { top: 3, right: 0, bottom: 1, left: 7 }, format: 'png' });
  assert.deepEqual([p.output.width, p.output.height], [47, 24]);
  assert.equal((await rgba(p.data, 0, 0))[3], 0);
  assert.equal((await rgba(p.data, 10, 10))[3], 255);
  const j = await run(await halves(40, 20), { padding: { left: 8 }, format: 'jpeg', quality: 95 });
  assert.deepEqual([j.output.width, j.output.height], [48, 20]);
  assert.ok((await pixel(j.data, 2, 10)).every((c) => c > 240));
  const c = await run(await halves(40, 20), { padding: { bottom: 4, color: '#0000ff' }, format: 'png' });
  assert.deepEqual(await pixel(c.data, 20, 22), [0, 0, 255]);
});

test('mask ellipse: corners transparent, centre opaque; JPEG corners white', async () => {
  const r = await run(await halves(40, 20), { mask: { shape: 'ellipse' }, format: 'png' });
  assert.deepEqual([r.output.width, r.output.height], [40, 20]);
  assert.equal((await rgba(r.data, 0, 0))[3], 0);
  assert.equal((await rgba(r.data, 39, 19))[3], 0);
  assert.equal((await rgba(r.data, 10, 10))[3], 255);
  const j = await run(await halves(40, 20), { mask: { shape: 'ellipse' }, format: 'jpeg', quality: 95 });
  assert.ok((await pixel(j.data, 0, 0)).every((c) => c > 230));
});

test('watermark: placed by gravity and padding, scaled to the output, with opacity', async () => {
  const mark = await solid(10, 10, 0, 255, 0);
  const source: WatermarkSource = async (id) => (id === 'logo' ? mark : undefined);
  const src = await solid(100, 50, 255, 255, 255);
  const r = await run(src, { watermark: { id: 'logo', gravity: 'southeast', padding: 5, scale: 0.2 }, format: 'png' }, source);
  assert.deepEqual([r.output.width, r.output.height], [100, 50]);
  // 20 × 20 at (75..94, 25..44).
  assert.deepEqual(await pixel(r.data, 85, 35), [0, 255, 0]);
  assert.deepEqual(await pixel(r.data, 96, 46), [255, 255, 255]);
  assert.deepEqual(await pixel(r.data, 10, 10), [255, 255, 255]);
  const half = await run(src, { watermark: { id: 'logo', gravity: 'northwest', opacity: 0.5, scale: 0.1 } , format: 'png' }, source);
  const [hr, hg] = await pixel(half.data, 5, 5);
  assert.ok(hg > 250 && hr > 110 && hr < 145, `half-transparent green over white: ${hr},${hg}`);
  await assert.rejects(run(src, { watermark: { id: 'other' } }, source), (e: unknown) => e instanceof ImageError && e.status === 400 && e.field === 'watermark.id');
});

test('output: progressive and baseline JPEG, chroma subsampling', async () => {
  const src = await sharp(photo()).resize(160).png().toBuffer();
  const prog = await run(src, { format: 'jpeg', output: { encoding: 'progressive' } });
  assert.equal((await sharp(prog.data).metadata()).isProgressive, true);
  const base = await run(src, { format: 'jpeg', optimize: 'medium', output: { encoding: 'baseline' } });
  assert.equal((await sharp(base.data).metadata()).isProgressive, false);
  const c444 = await run(src, { format: 'jpeg', output: { chroma_subsampling: '4:4:4' } });
  assert.equal((await sharp(c444.data).metadata()).chromaSubsampling, '4:4:4');
  const c420 = await run(src, { format: 'jpeg', output: { chroma_subsampling: '4:2:0' } });
  assert.equal((await sharp(c420.data).metadata()).chromaSubsampling, '4:2:0');
  await assert.rejects(run(src, { format: 'webp', output: { encoding: 'progressive' } }), (e: unknown) => e instanceof ImageError && e.field === 'output.encoding');
});

test('JPEG 2000: encoded where libvips can, else a 400 naming format', async () => {
  const src = await halves(40, 20);
  if (JP2_SUPPORTED) {
    const r = await run(src, { format: 'jp2' });
    assert.equal(r.contentType, 'image/jp2');
    assert.deepEqual([r.output.width, r.output.height], [40, 20]);
  } else {
    await assert.rejects(run(src, { format: 'jp2' }), (e: unknown) => e instanceof ImageError && e.status === 400 && e.field === 'format');
  }
});

test('frame limits: a border past the output maximum, strip:false, animated input are refused by field', async () => {
  await assert.rejects(
    processImage(await halves(40, 20), parseOptions({ border: { size: 100 } }), limits({ maxOutputWidth: 200 })),
    (e: unknown) => e instanceof ImageError && e.field === 'border.size',
  );
  await assert.rejects(run(await halves(40, 20), { mask: { shape: 'ellipse' }, strip: false }), (e: unknown) => e instanceof ImageError && e.field === 'strip');
});
