import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseOptions, parseOptionsHeader, DEFAULT_SHARPEN_SIGMA } from './options.js';
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
  assert.deepEqual(o.resize, { width: 800, height: undefined, fit: 'inside', upscale: false });
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

test('X-Options header: JSON text, bad JSON is a 400 on options', () => {
  assert.equal(parseOptionsHeader('{"format":"png"}').format, 'png');
  assert.equal(parseOptionsHeader(undefined).strip, true);
  assert.throws(() => parseOptionsHeader('{format: png}'), (e: unknown) => e instanceof ImageError && e.field === 'options');
  assert.throws(() => parseOptionsHeader(' '.repeat(10) + '{' + '"a":1,'.repeat(5000) + '}'), (e: unknown) => e instanceof ImageError && e.field === 'options');
  assert.throws(() => parseOptionsHeader('{"resize":{"width":-3}}'), (e: unknown) => e instanceof ImageError && e.field === 'resize.width');
});
