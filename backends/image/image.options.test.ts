import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseFetchRequest, parseOptions, parseOptionsHeader, DEFAULT_SHARPEN_SIGMA } from './options.js';
import { ImageError } from './types.js';

function fails(raw: unknown, field: string): void {
  assert.throws(
    () => parseOptions(raw),
    (e: unknown) => e instanceof ImageError && e.status === 400 && e.code === 'bad_request' && e.field === field,
    `expected 400 naming ${field}`,
  );
}

test('defaults: strip on, nothing else', () => {
  const o = parseOptions({});
  assert.equal(o.strip, true);
  assert.equal(o.resize, undefined);
  assert.equal(o.format, undefined);
  assert.equal(o.lossless, false);
});

test('a full valid set parses to the typed shape', () => {
  const o = parseOptions({
    resize: { width: 800, fit: 'inside' },
    crop: { mode: 'attention', aspect: '16:9' },
    format: 'webp', quality: 80, optimize: 'high', rotate: -90, flip: true, flop: false,
    blur: 2, sharpen: true, strip: false, webhook: 'https://example.com/hook',
  });
  assert.deepEqual(o.resize, { width: 800, height: undefined, fit: 'inside', upscale: false, gravity: undefined });
  assert.equal(o.crop?.mode, 'attention');
  assert.ok(Math.abs(o.crop!.aspect! - 16 / 9) < 1e-9);
  assert.equal(o.rotate, 270);
  assert.equal(o.sharpen, DEFAULT_SHARPEN_SIGMA);
  assert.equal(o.strip, false);
  assert.deepEqual(o.webhook, { url: 'https://example.com/hook', delaySeconds: 0 });
});

test('webhook as {url, delay}: delay in whole seconds, up to a day', () => {
  assert.deepEqual(parseOptions({ webhook: { url: 'https://example.com/h', delay: 30 } }).webhook, { url: 'https://example.com/h', delaySeconds: 30 });
  assert.deepEqual(parseOptions({ webhook: { url: 'https://example.com/h' } }).webhook, { url: 'https://example.com/h', delaySeconds: 0 });
  assert.equal(parseOptions({ webhook: { url: 'https://example.com/h', delay: 86_400 } }).webhook?.delaySeconds, 86_400);
  fails({ webhook: { url: 'https://example.com/h', delay: 86_401 } }, 'webhook.delay');
  fails({ webhook: { url: 'https://example.com/h', delay: -1 } }, 'webhook.delay');
  fails({ webhook: { url: 'https://example.com/h', delay: 1.5 } }, 'webhook.delay');
  fails({ webhook: { url: 'ftp://x/y' } }, 'webhook.url');
  fails({ webhook: { delay: 5 } }, 'webhook.url');
  fails({ webhook: { url: 'https://example.com/h', retries: 3 } }, 'webhook.retries');
});

test('explicit crop rectangle', () => {
  const o = parseOptions({ crop: { x: 1, y: 2, width: 3, height: 4 } });
  assert.deepEqual(o.crop?.rect, { x: 1, y: 2, width: 3, height: 4 });
  assert.equal(o.crop?.mode, undefined);
});

test('every bad value names its field', () => {
  fails({ bogus: 1 }, 'bogus');
  fails({ resize: { width: 0 } }, 'resize.width');
  fails({ resize: { width: 1.5 } }, 'resize.width');
  fails({ resize: { height: '100' } }, 'resize.height');
  fails({ resize: { width: 10, fit: 'stretch' } }, 'resize.fit');
  fails({ resize: { width: 10, upscale: 'yes' } }, 'resize.upscale');
  fails({ resize: { width: 10, depth: 3 } }, 'resize.depth');
  fails({ resize: {} }, 'resize');
  fails({ resize: 5 }, 'resize');
  fails({ crop: { mode: 'smart' } }, 'crop.mode');
  fails({ crop: { x: 1, y: 1, width: 5 } }, 'crop.height');
  fails({ crop: { x: -1, y: 1, width: 5, height: 5 } }, 'crop.x');
  fails({ crop: { aspect: '16/9' } }, 'crop.aspect');
  fails({ crop: { aspect: 0 } }, 'crop.aspect');
  fails({ crop: { mode: 'center', x: 0, y: 0, width: 1, height: 1 } }, 'crop.mode');
  fails({ format: 'bmp' }, 'format');
  fails({ quality: 0 }, 'quality');
  fails({ quality: 101 }, 'quality');
  fails({ lossless: 1 }, 'lossless');
  fails({ lossless: true, quality: 50 }, 'quality');
  fails({ optimize: 'max' }, 'optimize');
  fails({ rotate: 45 }, 'rotate');
  fails({ flip: 'true' }, 'flip');
  fails({ flop: 0 }, 'flop');
  fails({ blur: 0.1 }, 'blur');
  fails({ blur: 1001 }, 'blur');
  fails({ sharpen: -1 }, 'sharpen');
  fails({ strip: 'no' }, 'strip');
  fails({ webhook: 'ftp://x/y' }, 'webhook');
  fails({ webhook: 'not a url' }, 'webhook');
  fails([1, 2], 'options');
});

test('the modelled API\'s operations parse to their typed shapes', () => {
  const o = parseOptions({
    scale: { percent: 50 },
    adjust: { brightness: 1.2, contrast: 0.8, saturation: 0, gamma: 2.2, hue: -90, unsharp: 1.5 },
    filter: { grayscale: true, negate: false, blur: 2 },
    auto: { enhance: true },
    border: { size: 4, color: '#f00' },
    padding: { top: 1, left: 2, color: '#00000080' },
    mask: { shape: 'ellipse' },
    watermark: { id: 'logo-1', gravity: 'north', padding: 10, opacity: 0.5, scale: 0.3 },
    output: { encoding: 'progressive', chroma_subsampling: '4:4:4' },
  });
  assert.equal(o.scale, 50);
  assert.deepEqual(o.adjust, { brightness: 1.2, contrast: 0.8, saturation: 0, gamma: 2.2, hue: -90, unsharp: 1.5 });
  assert.deepEqual(o.filter, { grayscale: true, sepia: false, negate: false });
  assert.equal(o.blur, 2);
  assert.equal(o.enhance, true);
  assert.deepEqual(o.border, { size: 4, color: { r: 255, g: 0, b: 0, alpha: 1 } });
  assert.deepEqual(o.padding, { top: 1, right: 0, bottom: 0, left: 2, color: { r: 0, g: 0, b: 0, alpha: 0.502 } });
  assert.equal(o.mask, 'ellipse');
  assert.deepEqual(o.watermark, { id: 'logo-1', gravity: 'north', padding: 10, opacity: 0.5, scale: 0.3 });
  assert.deepEqual(o.output, { encoding: 'progressive', chromaSubsampling: '4:4:4' });
  assert.equal(parseOptions({ crop: { gravity: 'faces', aspect: 1 } }).crop?.mode, 'face');
  assert.equal(parseOptions({ resize: { width: 5, height: 5, gravity: 'northwest' } }).resize?.gravity, 'northwest');
});

test('every bad value of the new operations names its field', () => {
  fails({ scale: { percent: 0 } }, 'scale.percent');
  fails({ scale: {} }, 'scale.percent');
  fails({ scale: { percent: 50 }, resize: { width: 5 } }, 'scale');
  fails({ resize: { width: 5, height: 5, gravity: 'up' } }, 'resize.gravity');
  fails({ resize: { width: 5, gravity: 'north' } }, 'resize.gravity');
  fails({ resize: { width: 5, height: 5, fit: 'fill', gravity: 'north' } }, 'resize.gravity');
  fails({ resize: { width: 5, height: 5, fit: 'contain', gravity: 'face' } }, 'resize.gravity');
  fails({ crop: { gravity: 'face', mode: 'center', aspect: 1 } }, 'crop.gravity');
  fails({ crop: { gravity: 'north', x: 0, y: 0, width: 1, height: 1 } }, 'crop.gravity');
  fails({ crop: { gravity: 'north', aspect: 1 }, resize: { width: 5, height: 5, gravity: 'south' } }, 'resize.gravity');
  fails({ crop: { x: 0, y: 0, width: 4, height: 4 }, resize: { width: 5, height: 5, gravity: 'face' } }, 'resize.gravity');
  fails({ adjust: { brightness: -1 } }, 'adjust.brightness');
  fails({ adjust: { contrast: 'x' } }, 'adjust.contrast');
  fails({ adjust: { saturation: 11 } }, 'adjust.saturation');
  fails({ adjust: { gamma: 0.5 } }, 'adjust.gamma');
  fails({ adjust: { hue: 12.5 } }, 'adjust.hue');
  fails({ adjust: { unsharp: 0 } }, 'adjust.unsharp');
  fails({ adjust: { unsharp: 1 }, sharpen: true }, 'adjust.unsharp');
  fails({ adjust: { vibrance: 1 } }, 'adjust.vibrance');
  fails({ filter: { grayscale: 1 } }, 'filter.grayscale');
  fails({ filter: { negate: 'yes' } }, 'filter.negate');
  fails({ filter: { sepia: true, grayscale: true } }, 'filter.sepia');
  fails({ filter: { blur: 0 } }, 'filter.blur');
  fails({ filter: { blur: 1 }, blur: 1 }, 'filter.blur');
  fails({ filter: { sharpen: 11 } }, 'filter.sharpen');
  fails({ filter: { emboss: true } }, 'filter.emboss');
  fails({ auto: { enhance: 'on' } }, 'auto.enhance');
  fails({ auto: true }, 'auto');
  fails({ border: { color: '#000' } }, 'border.size');
  fails({ border: { size: 2001 } }, 'border.size');
  fails({ border: { size: 2, color: 'red' } }, 'border.color');
  fails({ padding: {} }, 'padding');
  fails({ padding: { top: -1 } }, 'padding.top');
  fails({ padding: { left: 1, color: '#12345' } }, 'padding.color');
  fails({ mask: { shape: 'circle' } }, 'mask.shape');
  fails({ mask: {} }, 'mask.shape');
  fails({ watermark: { id: '../x' } }, 'watermark.id');
  fails({ watermark: {} }, 'watermark.id');
  fails({ watermark: { id: 'a', gravity: 'face' } }, 'watermark.gravity');
  fails({ watermark: { id: 'a', opacity: 2 } }, 'watermark.opacity');
  fails({ watermark: { id: 'a', scale: 0 } }, 'watermark.scale');
  fails({ watermark: { id: 'a', padding: -2 } }, 'watermark.padding');
  fails({ output: { encoding: 'interlaced' } }, 'output.encoding');
  fails({ output: { chroma_subsampling: '4:2:2' } }, 'output.chroma_subsampling');
  fails({ output: { quality: 3 } }, 'output.quality');
});

test('X-Options header: JSON text, bad JSON is a 400 on options', () => {
  assert.equal(parseOptionsHeader('{"format":"png"}').format, 'png');
  assert.equal(parseOptionsHeader(undefined).strip, true);
  assert.throws(() => parseOptionsHeader('{format: png}'), (e: unknown) => e instanceof ImageError && e.field === 'options');
  assert.throws(() => parseOptionsHeader(' '.repeat(10) + '{' + '"a":1,'.repeat(5000) + '}'), (e: unknown) => e instanceof ImageError && e.field === 'options');
  assert.throws(() => parseOptionsHeader('{"resize":{"width":-3}}'), (e: unknown) => e instanceof ImageError && e.field === 'resize.width');
});

test('every problem at once: the field of the first, a message naming each', () => {
  assert.throws(
    () => parseOptions({ quality: 0, resize: { width: 'wide', fit: 'stretch' }, bogus: true }),
    (e: unknown) => e instanceof ImageError && e.field === 'bogus'
      && e.message === 'bogus: unknown field (expected one of: resize, scale, crop, format, quality, lossless, optimize, rotate, flip, flop, blur, sharpen, strip, '
        + 'webhook, store, adjust, filter, auto, border, padding, mask, watermark, output); resize.width: must be a whole number, got "wide"; '
        + 'resize.fit: must be one of cover, contain, fill, inside, outside, got "stretch"; quality: must be >= 1, got 0',
  );
  assert.throws(
    () => parseOptions({ lossless: true, quality: 50, filter: { grayscale: true, sepia: true } }),
    (e: unknown) => e instanceof ImageError && e.field === 'filter.sepia'
      && e.message === 'filter.sepia: cannot be combined with filter.grayscale; quality: cannot be combined with lossless',
  );
});

test('a refused credential is named, never echoed', () => {
  const store = { provider: 's3', bucket: 'my-bucket', path: 'a.jpg', credentials: { accessKeyId: 'AKID', secretAccessKey: 'not a secret\u0001' } };
  assert.throws(() => parseOptions({ store }), (e: unknown) => e instanceof ImageError && e.field === 'store.credentials.secretAccessKey'
    && e.message === 'store.credentials.secretAccessKey: must be 1-256 printable characters');
});

test('a union names the form the value was given in: a string webhook is a URL, an object one has a url', () => {
  assert.throws(() => parseOptions({ webhook: 'not a url' }), (e: unknown) => e instanceof ImageError && e.message === 'webhook: must be an http(s) URL');
  assert.throws(() => parseOptions({ webhook: 42 }), (e: unknown) => e instanceof ImageError && e.message === 'webhook: must be an http(s) URL or {url, delay}');
  assert.throws(() => parseOptions({ crop: { aspect: '16/9' } }), (e: unknown) => e instanceof ImageError
    && e.message === 'crop.aspect: must be a ratio from 0.01 to 100: a number, or "W:H" like "16:9"');
  assert.throws(() => parseOptions({ sharpen: 'yes' }), (e: unknown) => e instanceof ImageError && e.message === 'sharpen: must be true or a sigma from 0.000001 to 10');
});

test('null is the same as leaving an option out; the caller\'s object is left as it was', () => {
  const raw = { resize: { width: 10, height: null }, format: null, watermark: null };
  assert.deepEqual(parseOptions(raw), parseOptions({ resize: { width: 10 } }));
  assert.deepEqual(raw, { resize: { width: 10, height: null }, format: null, watermark: null });
  assert.equal(parseOptions(null).strip, true);
});

test('fetch body: url required, unknown fields refused, option problems named under options.', () => {
  assert.equal(parseFetchRequest({ url: 'https://example.com/a.jpg', options: { format: 'png' } }).options.format, 'png');
  assert.equal(parseFetchRequest({ url: 'https://example.com/a.jpg' }).options.strip, true);
  assert.throws(() => parseFetchRequest({}), (e: unknown) => e instanceof ImageError && e.field === 'url' && e.message === 'url: is required');
  assert.throws(() => parseFetchRequest({ url: 'https://example.com/a.jpg', extra: 1 }), (e: unknown) => e instanceof ImageError && e.field === 'extra');
  assert.throws(() => parseFetchRequest([1]), (e: unknown) => e instanceof ImageError && e.field === 'body');
  assert.throws(() => parseFetchRequest({ url: 'https://example.com/a.jpg', options: { quality: 500 } }), (e: unknown) => e instanceof ImageError && e.field === 'options.quality');
  assert.throws(() => parseFetchRequest({ url: 'https://example.com/a.jpg', options: { lossless: true, quality: 5 } }),
    (e: unknown) => e instanceof ImageError && e.field === 'options.quality');
});
