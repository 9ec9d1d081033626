import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp, { type OutputInfo } from 'sharp';
import { WATERMARK_ID_RE } from '../image/options.js';
import { sniff } from '../image/sniff.js';
import { DEFAULT_LIMITS, DEFAULT_WATERMARK_LIMITS, ImageError, type ImageLimits, type WatermarkLimits } from '../image/types.js';

/**
 * Watermarks, uploaded once per customer and referred to by id in `watermark.id`.
 *
 * Keyed by customer on disk (`<dir>/<sha256(customer)>/<id>.png`), so a lookup can only
 * ever see the caller's own files: the customer comes from `X-Sluice-Customer`, which
 * the gateway sets from the credential and strips from clients. Like the results
 * store, the directory is the only state, so backends sharing it share the watermarks.
 * Uploads are checked (type, bytes, pixels) and stored re-encoded as PNG, so what is
 * composited later is a known-good image.
 */
export interface StoredWatermark {
  readonly id: string;
  readonly width: number;
  readonly height: number;
  readonly bytes: number;
}

export class WatermarkStore {
  private constructor(
    readonly dir: string,
    private readonly ownsDir: boolean,
    readonly limits: WatermarkLimits,
  ) {}

  /** `dir` undefined: a fresh temp directory for this process, removed on close. */
  static async open(dir: string | undefined, limits: WatermarkLimits = DEFAULT_WATERMARK_LIMITS): Promise<WatermarkStore> {
    if (dir === undefined) return new WatermarkStore(await mkdtemp(join(tmpdir(), 'sluice-watermarks-')), true, limits);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return new WatermarkStore(dir, false, limits);
  }

  private path(customer: string, id: string): string {
    if (!WATERMARK_ID_RE.test(id)) throw new ImageError(400, 'bad_request', 'watermark id must be 1 to 64 letters, digits, _ or -', 'id');
    return join(this.dir, createHash('sha256').update(customer).digest('hex'), `${id}.png`);
  }

  /** Checks and stores an upload, replacing any watermark of that id. */
  async put(customer: string, id: string, input: Buffer): Promise<StoredWatermark> {
    const path = this.path(customer, id);
    const limits: ImageLimits = { ...DEFAULT_LIMITS, maxInputBytes: this.limits.maxBytes, maxInputPixels: this.limits.maxPixels, maxFrames: 1 };
    if (input.length > limits.maxInputBytes) {
      throw new ImageError(413, 'payload_too_large', `watermark is ${input.length} bytes; the limit is ${limits.maxInputBytes}`);
    }
    const { metadata } = await sniff(input, limits);
    if (metadata.width * metadata.height > limits.maxInputPixels) {
      throw new ImageError(413, 'payload_too_large', `watermark is ${metadata.width}x${metadata.height}; the limit is ${limits.maxInputPixels} pixels`);
    }
    let png: { data: Buffer; info: OutputInfo };
    try {
      png = await sharp(input, { failOn: 'warning', limitInputPixels: limits.maxInputPixels, autoOrient: true })
        .png({ compressionLevel: 6 })
        .toBuffer({ resolveWithObject: true });
    } catch {
      throw new ImageError(422, 'unprocessable_image', 'the watermark could not be decoded');
    }
    await mkdir(join(path, '..'), { recursive: true, mode: 0o700 });
    const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
    try {
      await writeFile(tmp, png.data, { mode: 0o600 });
      await rename(tmp, path);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
    return { id, width: png.info.width, height: png.info.height, bytes: png.data.length };
  }

  /** The customer's watermark, or undefined when it has none by that id. */
  async get(customer: string, id: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.path(customer, id));
    } catch (err) {
      if (err instanceof ImageError) throw err;
      return undefined;
    }
  }

  /** True when there was one to delete. */
  async delete(customer: string, id: string): Promise<boolean> {
    try {
      await unlink(this.path(customer, id));
      return true;
    } catch (err) {
      if (err instanceof ImageError) throw err;
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.ownsDir) await rm(this.dir, { recursive: true, force: true });
  }
}
