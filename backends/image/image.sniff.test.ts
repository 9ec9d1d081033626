import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import { hasZipTrailer, sniff } from './sniff.js';
import { ImageError } from './types.js';
import { alphaPng, animated, avif, heicBranded, limits, photo } from './fixtures.js';

async function rejects(buf: Buffer, status: number, allowSvg = false): Promise<void> {
  await assert.rejects(sniff(buf, limits({ allowSvg })), (e: unknown) => e instanceof ImageError && e.status === status, `expected ${status}`);
}

test('each allowed type is recognised from its bytes and confirmed by the decoder', async () => {
  const small = sharp(photo()).resize(64);
  const cases: [Buffer, string][] = [
    [photo(), 'jpeg'],
    [await alphaPng(), 'png'],
    [await small.clone().webp().toBuffer(), 'webp'],
    [await small.clone().tiff().toBuffer(), 'tiff'],
    [await small.clone().gif().toBuffer(), 'gif'],
    [await animated('gif', 3), 'gif'],
    [await avif(), 'avif'],
  ];
  for (const [buf, fmt] of cases) {
    const s = await sniff(buf, limits());
    assert.equal(s.format, fmt);
    assert.ok(s.metadata.width > 0);
  }
});

test('HEIC and AVIF are told apart by the ftyp brand', async () => {
  const a = await sniff(await avif(), limits());
  const h = await sniff(await heicBranded(), limits());
  assert.equal(a.format, 'avif');
  assert.equal(a.mime, 'image/avif');
  assert.equal(h.format, 'heif');
  assert.equal(h.mime, 'image/heic');
});

test('garbage, empty and non-image types are 415', async () => {
  await rejects(Buffer.alloc(0), 415);
  await rejects(Buffer.from('hello, this is plainly text and not an image at all'), 415);
  await rejects(Buffer.from('%PDF-1.4\n1 0 obj\n<<>>\nendobj\n'.repeat(10)), 415);
  // A real image type, just not on the allow-list: a 1×1 BMP.
  const bmp = Buffer.alloc(58);
  bmp.write('BM', 0, 'latin1');
  bmp.writeUInt32LE(58, 2);
  bmp.writeUInt32LE(54, 10);
  bmp.writeUInt32LE(40, 14);
  bmp.writeInt32LE(1, 18);
  bmp.writeInt32LE(1, 22);
  bmp.writeUInt16LE(1, 26);
  bmp.writeUInt16LE(24, 28);
  await rejects(bmp, 415);
  await rejects(Buffer.from('<!DOCTYPE html><html><body>hi</body></html>'), 415);
});

test('truncated header is 422', async () => {
  const p = photo();
  await rejects(p.subarray(0, 200), 422);
  await rejects((await alphaPng()).subarray(0, 30), 422);
});

test('polyglots are refused: JPEG+ZIP, HTML behind a JPEG magic', async () => {
  const small = await sharp(photo()).resize(64).jpeg().toBuffer();
  // Minimal ZIP: an empty archive is just its end-of-central-directory record.
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  await rejects(Buffer.concat([small, eocd]), 415);
  const html = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.from('<html><script>alert(1)</script></html>')]);
  await assert.rejects(sniff(html, limits()), (e: unknown) => e instanceof ImageError && (e.status === 415 || e.status === 422));
  const jpegWithComment = Buffer.concat([small.subarray(0, 2), Buffer.from([0xff, 0xfe, 0x00, 0x20]), Buffer.from('<script>alert(1)</script>    '), small.subarray(2)]);
  await rejects(jpegWithComment, 415);
  // Control: the same image untouched passes, so the refusals above are about the payload.
  assert.equal((await sniff(small, limits())).format, 'jpeg');
});

test('a ZIP trailer counts only when its comment reaches exactly to the end', () => {
  const eocd = (comment: number): Buffer => {
    const b = Buffer.alloc(22 + comment, 0x20);
    b.writeUInt32LE(0x06054b50, 0);
    b.writeUInt16LE(comment, 20);
    return b;
  };
  const body = Buffer.alloc(1000, 0x41);
  assert.equal(hasZipTrailer(Buffer.concat([body, eocd(0)])), true);
  assert.equal(hasZipTrailer(Buffer.concat([body, eocd(300)])), true);
  assert.equal(hasZipTrailer(eocd(0)), true);
  // A signature whose comment length does not fit, then a real trailer before it: the search goes on backwards.
  const stray = eocd(0);
  stray.writeUInt16LE(5, 20);
  const real = eocd(0);
  real.writeUInt16LE(22 + 7, 20);
  assert.equal(hasZipTrailer(Buffer.concat([body, real, stray, Buffer.alloc(7)])), true);
  assert.equal(hasZipTrailer(Buffer.concat([body, stray])), false);
  assert.equal(hasZipTrailer(Buffer.concat([body, eocd(0), Buffer.alloc(1)])), false);
  // Further back than a maximal comment: not a trailer.
  assert.equal(hasZipTrailer(Buffer.concat([eocd(0), Buffer.alloc(0x10000)])), false);
  assert.equal(hasZipTrailer(Buffer.from('PK\x05\x06')), false);
  assert.equal(hasZipTrailer(Buffer.alloc(0)), false);
});

test('SVG is refused unless enabled, and entity declarations always', async () => {
  const svg = Buffer.from('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="20" height="10"><rect width="20" height="10" fill="red"/></svg>');
  await rejects(svg, 415);
  const s = await sniff(svg, limits({ allowSvg: true }));
  assert.equal(s.format, 'svg');
  assert.equal(s.metadata.width, 20);
  const laughs = Buffer.from('<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaa">]><svg xmlns="http://www.w3.org/2000/svg" width="2" height="2">&a;</svg>');
  await rejects(laughs, 415, true);
});

test('magic number and decoder must agree', async () => {
  // A GIF header followed by PNG bytes: file-type says gif, the gif decoder cannot read it.
  const png = await alphaPng();
  const liar = Buffer.concat([Buffer.from('GIF89a'), png.subarray(6)]);
  await rejects(liar, 422);
});

test('truncated pixel data (header intact) is 422 from processing, not a crash', async () => {
  const { processImage } = await import('./process.js');
  const { parseOptions } = await import('./options.js');
  const p = photo();
  const cut = p.subarray(0, Math.floor(p.length / 2));
  assert.equal((await sniff(cut, limits())).format, 'jpeg', 'the header alone still reads');
  await assert.rejects(processImage(cut, parseOptions({ format: 'png' }), limits()), (e: unknown) => e instanceof ImageError && e.status === 422 && e.code === 'unprocessable_image');
});
