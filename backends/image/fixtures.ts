// Inputs for the image tests, built in-process from real photos or by hand, so no test
// depends on the network or on files outside node_modules.
import { readFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { prepareJob, type Job, type JobEnv, type Step } from './job.js';
import { parseOptions } from './options.js';
import { openDecoder } from './steps/decode.js';
import { DEFAULT_LIMITS, ImageError, type ImageLimits } from './types.js';

export const PHOTO_PATH = 'node_modules/@vladmandic/face-api/demo/sample1.jpg';
export const photo = (): Buffer => readFileSync(PHOTO_PATH);
export const limits = (over: Partial<ImageLimits> = {}): ImageLimits => ({ ...DEFAULT_LIMITS, ...over });

function crc32(buf: Buffer): number {
  let crc = 0xffffffff;
  for (let n = 0; n < buf.length; n++) {
    let c = (crc ^ buf[n]!) & 0xff;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    crc = (crc >>> 8) ^ c;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** A valid-looking PNG whose header claims width × height; the pixel data is tiny. */
export function pngBomb(width = 64000, height = 64000): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(Buffer.alloc(600))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** width × height RGB raw pixels: left half red, right half blue. */
export async function halves(width: number, height: number): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      if (x < width / 2) raw[i] = 255;
      else raw[i + 2] = 255;
    }
  }
  return sharp(raw, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

/** RGBA PNG: opaque green square on a transparent background. */
export async function alphaPng(size = 64): Promise<Buffer> {
  return sharp({ create: { width: size, height: size, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } })
    .composite([{ input: { create: { width: size / 2, height: size / 2, channels: 4, background: '#00ff00' } }, left: size / 4, top: size / 4 }])
    .png()
    .toBuffer();
}

/** An animated image of `frames` solid-colour frames. */
export async function animated(format: 'gif' | 'webp', frames: number, size = 32): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let i = 0; i < frames; i++) {
    parts.push(
      await sharp({ create: { width: size, height: size, channels: 3, background: { r: (i * 40) % 256, g: 80, b: 200 - ((i * 30) % 200) } } })
        .png()
        .toBuffer(),
    );
  }
  const pipe = sharp(parts, { join: { animated: true } });
  return format === 'gif' ? pipe.gif().toBuffer() : pipe.webp().toBuffer();
}

export async function avif(): Promise<Buffer> {
  return sharp(photo()).resize(320).avif({ quality: 50, effort: 0 }).toBuffer();
}

/**
 * A HEIC-branded file. This sharp build has no HEVC encoder, so an AVIF's ftyp brands are
 * rewritten to `heic`; the brand is what tells HEIC from AVIF, which is what is tested.
 */
export async function heicBranded(): Promise<Buffer> {
  const b = Buffer.from(await avif());
  const size = b.readUInt32BE(0);
  for (let off = 8; off + 4 <= size; off += 4) {
    if (b.toString('latin1', off, off + 4) === 'avif') b.write('heic', off, 'latin1');
  }
  return b;
}

/** A 40×20 JPEG stored sideways with EXIF orientation 6 (display: 20×40, top half red). */
export async function exifRotated(): Promise<Buffer> {
  const raw = await sharp(await halves(40, 20)).raw().toBuffer();
  return sharp(raw, { raw: { width: 40, height: 20, channels: 3 } })
    .jpeg({ quality: 95 })
    .withMetadata({ orientation: 6 })
    .toBuffer();
}

/** RGB of pixel (x, y) of an encoded image. */
export async function pixel(img: Buffer, x: number, y: number): Promise<[number, number, number]> {
  const { data, info } = await sharp(img).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const i = (y * info.width + x) * info.channels;
  return [data[i]!, data[i + 1]!, data[i + 2]!];
}

export const isRed = ([r, g, b]: [number, number, number]): boolean => r > 180 && g < 80 && b < 80;
export const isBlue = ([r, g, b]: [number, number, number]): boolean => b > 180 && r < 80 && g < 80;

/** A job for `img` with options as a client writes them, for the steps' own tests. */
export function jobFor(img: Buffer, options: object = {}, env: Partial<JobEnv> = {}, over: Partial<ImageLimits> = {}): Promise<Job> {
  return prepareJob(img, parseOptions(options), limits(over), { detectFaces: undefined, watermarks: undefined, accepted: undefined, ...env });
}

/** Runs the checks of `steps` in order on a job, as the pipeline does. */
export async function checked(job: Job, ...steps: Step[]): Promise<Job> {
  for (const s of steps) await s.check?.(job);
  return job;
}

/** The job's input decoded, `steps` applied in order, as a lossless PNG. */
export async function applied(job: Job, ...steps: Step[]): Promise<Buffer> {
  let pipe = openDecoder(job);
  for (const s of steps) if (s.apply !== undefined) pipe = await s.apply(pipe, job);
  return pipe.png().toBuffer();
}

/** RGBA of pixel (x, y) of an encoded image. */
export async function rgba(img: Buffer, x: number, y: number): Promise<[number, number, number, number]> {
  const { data, info } = await sharp(img).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  const i = (y * info.width + x) * 4;
  return [data[i]!, data[i + 1]!, data[i + 2]!, data[i + 3]!];
}

/** A width × height PNG of one colour. */
export function solid(width: number, height: number, r: number, g: number, b: number): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r, g, b } } }).png().toBuffer();
}

/** ImageError with this status and field. */
export const refused = (status: number, field?: string) => (e: unknown): boolean =>
  e instanceof ImageError && e.status === status && (field === undefined || e.field === field);
