// One image on its way through the pipeline (process.ts): the facts read from its header
// once, the options and limits, and the plan the steps' checks build before any pixel is
// decoded. Plain data; the steps read it, and the checks fill in the plan.

import type { ResizeOptions as SharpResize, Sharp } from 'sharp';
import type { Rect, Size } from './geometry.js';
import { sniff, type Sniffed } from './sniff.js';
import { ImageError, type FaceDetector, type ImageLimits, type ImageOptions, type OutputFormat, type WatermarkSource } from './types.js';

/** What processing may call on: all optional, and injected (the service wires the real ones). */
export interface JobEnv {
  readonly detectFaces: FaceDetector | undefined;
  readonly watermarks: WatermarkSource | undefined;
  /** The formats the client's Accept takes (format: auto chooses among them); undefined: any. */
  readonly accepted: ReadonlySet<OutputFormat> | undefined;
}

export interface Job {
  readonly input: Buffer;
  readonly opts: ImageOptions;
  readonly limits: ImageLimits;
  readonly env: JobEnv;
  /** The type and header facts (no pixels decoded). */
  readonly sniffed: Sniffed;
  /** Frames of an animatable input (GIF, WebP); 1 for everything else. */
  readonly frames: number;
  /** Height of one frame. */
  readonly pageHeight: number;
  /** The output format: the options', or decided from the input for `auto` (a still auto's checks are WebP's until encode chooses). */
  readonly format: OutputFormat;
  /** Every frame is decoded and encoded. */
  readonly animated: boolean;
  /** Pixels the decoder will produce (every frame of an animated output): what the limit and the work report count. */
  readonly decodedPixels: number;
  /** The input as displayed (EXIF orientation applied), before the client's rotate: the frame crop rectangles and face boxes use. */
  readonly oriented: Size;
  // ---- the plan, filled in by the checks ----
  /** The rectangle cut out, in the pipeline's frame (after rotate). */
  extract: Rect | undefined;
  resize: SharpResize | undefined;
  /** The output size as planned so far: after rotate, then crop, resize and the frame steps. */
  size: Size;
  /** A compositing step runs: the output may have transparent pixels, and carries no metadata. */
  composited: boolean;
  /** The face detector ran (a face crop), for the work report. */
  facesDetected: boolean;
}

/**
 * A step of the pipeline. `check` runs, in the pipeline's order, before any pixel is
 * decoded: it refuses what cannot be honoured (ImageError naming the field) and plans.
 * `apply` adds the step's operation to the pipeline (or, for the compositing steps, works
 * on the pixels of the steps before it) and returns it.
 */
export interface Step {
  readonly check?: (job: Job) => void | Promise<void>;
  readonly apply?: (pipe: Sharp, job: Job) => Sharp | Promise<Sharp>;
}

const ANIMATABLE = new Set(['gif', 'webp']);

/**
 * The output format when none is given, and of an animated `auto`, decided from the input
 * alone (a still `auto` encodes candidates instead: auto-format.ts):
 * - animated (GIF/WebP with > 1 frame) → webp (animated WebP is far smaller than GIF),
 *   gif for a client whose Accept takes gif and not webp;
 * - AVIF input → avif (re-encoding to WebP would usually grow it);
 * - everything else, alpha or not → webp.
 */
export function resolveAutoFormat(s: Sniffed, frames: number, accepted?: ReadonlySet<OutputFormat>): OutputFormat {
  if (frames > 1) return accepted !== undefined && !accepted.has('webp') && accepted.has('gif') ? 'gif' : 'webp';
  if (s.format === 'avif') return 'avif';
  return 'webp';
}

/** Sniffs the input (415/422 for what is not an accepted image) and reads its facts from the header. */
export async function prepareJob(input: Buffer, opts: ImageOptions, limits: ImageLimits, env: JobEnv): Promise<Job> {
  const sniffed = await sniff(input, limits);
  const meta = sniffed.metadata;
  const frames = ANIMATABLE.has(sniffed.format) ? Math.max(1, meta.pages ?? 1) : 1;
  const pageHeight = frames > 1 ? (meta.pageHeight ?? meta.height) : meta.height;
  const format: OutputFormat = opts.format === undefined || opts.format === 'auto' ? resolveAutoFormat(sniffed, frames, env.accepted) : opts.format;
  const animated = frames > 1 && ANIMATABLE.has(format);
  const swapExif = (meta.orientation ?? 1) >= 5;
  const oriented = swapExif ? { width: pageHeight, height: meta.width } : { width: meta.width, height: pageHeight };
  return {
    input, opts, limits, env, sniffed, frames, pageHeight, format,
    animated,
    decodedPixels: meta.width * pageHeight * (animated ? frames : 1),
    oriented,
    extract: undefined,
    resize: undefined,
    size: oriented,
    composited: false,
    facesDetected: false,
  };
}

/** The output format can carry transparency (JPEG cannot). */
export function alphaOut(job: Job): boolean {
  return job.format !== 'jpeg';
}

/** Refuses a planned output past the maximum, naming the option that made it so. */
export function checkOutputSize(job: Job, field: string): void {
  const { width, height } = job.size;
  const { maxOutputWidth, maxOutputHeight } = job.limits;
  if (width > maxOutputWidth || height > maxOutputHeight) {
    badField(field, `output would be ${width}x${height}; the maximum is ${maxOutputWidth}x${maxOutputHeight}`);
  }
}

export function tooLarge(message: string): never {
  throw new ImageError(413, 'payload_too_large', message);
}

export function badField(field: string, message: string): never {
  throw new ImageError(400, 'bad_request', `${field}: ${message}`, field);
}
