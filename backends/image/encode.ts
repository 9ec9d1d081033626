// The encoders: one sharp output call per format and optimize level, and the lossless
// PNG search. Shared by the single-format path and format: auto (auto-format.ts).
import { promisify } from 'node:util';
import { constants, crc32, deflate, inflate } from 'node:zlib';
import sharp, { type JpegOptions, type OutputInfo, type Sharp } from 'sharp';
import type { ImageOptions, OptimizeLevel, OutputFormat } from './types.js';

export const CONTENT_TYPE: Readonly<Record<OutputFormat, string>> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  avif: 'image/avif',
  gif: 'image/gif',
  jp2: 'image/jp2',
};

/**
 * Encoder settings per optimize level. `undefined` (no level) is sharp's defaults.
 * An explicit `quality` always wins over a level's default quality.
 *
 * | level    | jpeg (mozjpeg build)                              | png                                          | webp                             | avif            | gif                                |
 * |----------|---------------------------------------------------|----------------------------------------------|----------------------------------|-----------------|------------------------------------|
 * | (none)   | q80, Huffman optimised                            | zlib 6                                       | q80, effort 4                    | q50, effort 4   | effort 7                           |
 * | lossless | + progressive, optimised scans (same pixels)      | zlib 9 + adaptive filtering (same pixels)    | effort 6 (same quality)          | effort 6        | effort 10 (same palette size)      |
 * | low      | mozjpeg: trellis, deringing, quant table 3; q80   | zlib 9 + adaptive filtering (same pixels)    | effort 6; q78                    | effort 6; q50   | effort 10                          |
 * | medium   | mozjpeg; q75                                      | palette (libimagequant) q90, effort 7, zlib 9| effort 6; q75                    | effort 6; q45   | effort 10, interFrameMaxError 4    |
 * | high     | mozjpeg, 4:2:0; q65                               | palette q70, effort 10, zlib 9               | effort 6; q65                    | effort 7; q40   | effort 10, 128 colours, error 8    |
 *
 * `lossless: true` makes webp/avif lossless and forbids the lossy PNG palette; jpeg and gif
 * cannot be lossless and are refused with 400 naming `lossless`. The lossless PNG rows are
 * one trial of `smallestLosslessPng`, which process.ts uses for 8-bit stripped output.
 */
export function encode(pipe: Sharp, format: OutputFormat, opts: ImageOptions, paletteInput: boolean): Sharp {
  const level: OptimizeLevel | undefined = opts.optimize;
  const q = (dflt: number | undefined): number | undefined => opts.quality ?? dflt;
  switch (format) {
    case 'jpeg': {
      const base: JpegOptions = {
        quality: q(80),
        optimiseCoding: true,
        ...(opts.output.encoding === 'progressive' ? { progressive: true } : {}),
        ...(opts.output.chromaSubsampling !== undefined ? { chromaSubsampling: opts.output.chromaSubsampling } : {}),
      };
      // sharp's `mozjpeg: true` preset, spelled out so an explicit baseline can drop its progressive scans.
      const scans = opts.output.encoding !== 'baseline';
      const moz: JpegOptions = { trellisQuantisation: true, overshootDeringing: true, quantisationTable: 3, optimiseScans: scans, progressive: scans };
      if (level === 'lossless') return pipe.jpeg({ ...base, progressive: scans, optimiseScans: scans });
      if (level === 'low') return pipe.jpeg({ ...base, ...moz });
      if (level === 'medium') return pipe.jpeg({ ...base, quality: q(75), ...moz });
      if (level === 'high') return pipe.jpeg({ chromaSubsampling: '4:2:0', ...base, quality: q(65), ...moz });
      return pipe.jpeg(base);
    }
    case 'png': {
      if (opts.output.encoding === 'progressive') pipe = pipe.png({ progressive: true });
      // A quality without a level asks for lossy PNG, which only palette quantisation gives.
      if (opts.quality !== undefined && level === undefined) return pipe.png({ palette: true, quality: opts.quality, compressionLevel: 9 });
      if (level === 'lossless' || level === 'low' || ((level === 'medium' || level === 'high') && opts.lossless)) {
        return pipe.png({ compressionLevel: 9, adaptiveFiltering: true });
      }
      if (level === 'medium') return pipe.png({ palette: true, quality: q(90), effort: 7, compressionLevel: 9 });
      if (level === 'high') return pipe.png({ palette: true, quality: q(70), effort: 10, compressionLevel: 9 });
      return pipe.png({ compressionLevel: 6 });
    }
    case 'webp': {
      const lossless = opts.lossless || (opts.format === 'auto' && paletteInput && opts.quality === undefined);
      if (lossless) return pipe.webp({ lossless: true, effort: level === undefined ? 4 : 6 });
      if (level === undefined) return pipe.webp({ quality: q(80), effort: 4 });
      if (level === 'lossless') return pipe.webp({ quality: q(80), effort: 6 });
      // No smartSubsample: at equal SSIM it cost 1-3 % more bytes than plain cwebp (bench:optimize).
      if (level === 'low') return pipe.webp({ quality: q(78), effort: 6 });
      return pipe.webp({ quality: q(level === 'medium' ? 75 : 65), effort: 6 });
    }
    case 'avif': {
      if (opts.output.chromaSubsampling !== undefined) pipe = pipe.avif({ chromaSubsampling: opts.output.chromaSubsampling });
      if (opts.lossless) return pipe.avif({ lossless: true, effort: level === undefined ? 4 : 6 });
      if (level === undefined) return pipe.avif({ quality: q(50), effort: 4 });
      if (level === 'lossless' || level === 'low') return pipe.avif({ quality: q(50), effort: 6 });
      if (level === 'medium') return pipe.avif({ quality: q(45), effort: 6 });
      return pipe.avif({ quality: q(40), effort: 7 });
    }
    case 'gif': {
      if (level === undefined) return pipe.gif({ effort: 7 });
      if (level === 'lossless' || level === 'low') return pipe.gif({ effort: 10 });
      if (level === 'medium') return pipe.gif({ effort: 10, interFrameMaxError: 4 });
      return pipe.gif({ effort: 10, colours: 128, interFrameMaxError: 8 });
    }
    case 'jp2':
      return pipe.jp2({
        quality: q(level === 'high' ? 65 : level === 'medium' ? 75 : 80),
        lossless: opts.lossless,
        ...(opts.output.chromaSubsampling !== undefined ? { chromaSubsampling: opts.output.chromaSubsampling } : {}),
      });
  }
}

/** An encoded output and what the encoder reports about it. */
export interface Encoded {
  readonly data: Buffer;
  readonly info: OutputInfo;
}

/** An encoded output and its format. */
export interface EncodedImage extends Encoded {
  readonly format: OutputFormat;
  readonly contentType: string;
}

/** PNG at these options keeps every pixel and is worth a search (the level-less default is the fast zlib 6). */
export function searchesLosslessPng(opts: ImageOptions): boolean {
  const level = opts.optimize;
  if (opts.quality !== undefined && level === undefined) return false;
  return level === 'lossless' || level === 'low' || ((level === 'medium' || level === 'high') && opts.lossless);
}

/** Every alpha byte of interleaved 8-bit pixels is 255: the channel can go without changing the image. */
export function alphaIsOpaque(data: Buffer, channels: number): boolean {
  if (channels !== 2 && channels !== 4) return false;
  for (let i = channels - 1; i < data.length; i += channels) if (data[i] !== 255) return false;
  return true;
}

const deflateAsync = promisify(deflate);
const inflateAsync = promisify(inflate);

/** The PNG's IDAT chunks: where the first starts, where the last ends, and their data joined. */
function imageData(png: Buffer): { start: number; end: number; data: Buffer } {
  const parts: Buffer[] = [];
  let start = -1;
  let end = -1;
  for (let p = 8; p + 12 <= png.length;) {
    const len = png.readUInt32BE(p);
    if (png.toString('latin1', p + 4, p + 8) === 'IDAT') {
      if (start === -1) start = p;
      parts.push(png.subarray(p + 8, p + 8 + len));
      end = p + 12 + len;
    }
    p += 12 + len;
  }
  return { start, end, data: Buffer.concat(parts) };
}

function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(data, crc32(head.subarray(4))), 0);
  return Buffer.concat([head, data, crc]);
}

/**
 * The same PNG with its image data deflated again by zlib (Node's) with the filtered
 * strategy and the largest hash memory, when that is smaller: the bytes inflate to the
 * same scanlines, so the pixels cannot change. libvips compresses with zlib-ng, whose
 * level 9 leaves 0.1-0.2 % on photos that zlib's Z_FILTERED finds (optipng's favourite).
 * The IDAT chunks are consecutive (PNG requires it), so every other chunk is kept as it is.
 */
async function redeflated(png: Buffer): Promise<Buffer> {
  const idat = imageData(png);
  if (idat.start === -1) return png;
  const again = await deflateAsync(await inflateAsync(idat.data), { level: 9, memLevel: 9, strategy: constants.Z_FILTERED });
  if (again.length >= idat.data.length) return png;
  return Buffer.concat([png.subarray(0, idat.start), pngChunk('IDAT', again), png.subarray(idat.end)]);
}

/**
 * Lossless PNG as small as a bounded search makes it (about 3× the CPU of one zlib 9
 * encode): the pixels are rendered once; an alpha channel that is opaque everywhere is
 * dropped (the same image, a quarter fewer bytes to compress); they are compressed with
 * and without adaptive filtering, which optipng -o2 also tries (photos compress better
 * filtered, flat graphics unfiltered: 13 % on the bench's screenshot), the smaller is
 * kept, and its image data deflated once more (`redeflated`). Needs 8-bit input: a
 * 16-bit PNG would lose its low bits in the 8-bit raw hand-off (the caller checks).
 */
export async function smallestLosslessPng(pipe: Sharp, progressive: boolean, timeoutSeconds: number): Promise<Encoded> {
  const { data, info } = await pipe.raw().toBuffer({ resolveWithObject: true });
  const opaque = alphaIsOpaque(data, info.channels);
  const trial = (adaptiveFiltering: boolean): Promise<Encoded> => {
    let img = sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels } }).timeout({ seconds: timeoutSeconds });
    if (opaque) img = img.removeAlpha();
    return img.png({ compressionLevel: 9, adaptiveFiltering, progressive }).toBuffer({ resolveWithObject: true });
  };
  const [filtered, unfiltered] = await Promise.all([trial(true), trial(false)]);
  const best = unfiltered.data.length < filtered.data.length ? unfiltered : filtered;
  const png = await redeflated(best.data);
  return { data: png, info: { ...best.info, size: png.length } };
}
