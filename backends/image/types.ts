// The boundary types of the image service: what the HTTP layer hands to processing,
// what processing hands back, and the errors a client can see. Plain data, validated
// once at the edge of the service (options.ts), trusted inside.

import type { WorkReport } from '../../common/work-report.js';
import { HttpError } from '../../common/errors.js';
import type { COMPASS, CROP_MODES, FITS, FORMATS, GRAVITIES, OPTIMIZE_LEVELS } from './options-schema.js';

// The option values are listed once, in the schema the client's JSON is checked against.
export type OutputFormat = typeof FORMATS[number];
export type InputFormat = 'jpeg' | 'png' | 'webp' | 'avif' | 'gif' | 'tiff' | 'heif' | 'svg';
export type Fit = typeof FITS[number];
export type CropMode = typeof CROP_MODES[number];
export type OptimizeLevel = typeof OPTIMIZE_LEVELS[number];
export type Compass = typeof COMPASS[number];
/** face: the most prominent face; faces: all of them; both fall back to center when none is found. */
export type Gravity = typeof GRAVITIES[number];

/** 8-bit sRGB, alpha 0..1. */
export interface Colour {
  readonly r: number;
  readonly g: number;
  readonly b: number;
  readonly alpha: number;
}

export interface ResizeOptions {
  readonly width: number | undefined;
  readonly height: number | undefined;
  readonly fit: Fit;
  /** Never enlarge unless asked. */
  readonly upscale: boolean;
  /** Where the kept (cover) or placed (contain) part sits; undefined = center. */
  readonly gravity: Gravity | undefined;
}

/** A crop by strategy (mode, optionally to an aspect ratio) or an explicit rectangle. */
export interface CropOptions {
  readonly mode: CropMode | undefined;
  readonly rect: { readonly x: number; readonly y: number; readonly width: number; readonly height: number } | undefined;
  /** width / height, from "16:9" or a number. */
  readonly aspect: number | undefined;
  /** Placement of a strategy crop; set instead of mode (the parser turns it into mode center/attention/entropy/face). */
  readonly gravity: Gravity | undefined;
}

export interface AdjustOptions {
  /** Multipliers, 1 = unchanged. */
  readonly brightness: number | undefined;
  readonly contrast: number | undefined;
  readonly saturation: number | undefined;
  /** Decoding gamma 1..3 (sharp's gamma: darkens mid-tones as it grows). */
  readonly gamma: number | undefined;
  /** Hue rotation in degrees. */
  readonly hue: number | undefined;
  /** Unsharp-mask sigma. */
  readonly unsharp: number | undefined;
}

export interface FilterOptions {
  readonly grayscale: boolean;
  readonly sepia: boolean;
  readonly negate: boolean;
}

export interface BorderOptions {
  readonly size: number;
  readonly color: Colour;
}

export interface PaddingOptions {
  readonly top: number;
  readonly right: number;
  readonly bottom: number;
  readonly left: number;
  /** Undefined: transparent where the output format has alpha, else white. */
  readonly color: Colour | undefined;
}

export interface WatermarkOptions {
  readonly id: string;
  readonly gravity: Compass;
  /** Pixels between the watermark and the image edges it is placed against. */
  readonly padding: number;
  readonly opacity: number;
  /** Watermark width as a fraction of the output width. */
  readonly scale: number;
}

export interface OutputOptions {
  readonly encoding: 'baseline' | 'progressive' | undefined;
  readonly chromaSubsampling: '4:4:4' | '4:2:0' | undefined;
}

export interface ImageOptions {
  readonly resize: ResizeOptions | undefined;
  /** Percent of the input (after crop), instead of resize. */
  readonly scale: number | undefined;
  readonly crop: CropOptions | undefined;
  /** 'auto' is resolved against the input by processing. */
  readonly format: OutputFormat | 'auto' | undefined;
  readonly quality: number | undefined;
  readonly lossless: boolean;
  readonly optimize: OptimizeLevel | undefined;
  /** Degrees, multiple of 90 (after EXIF auto-orient, which always happens). */
  readonly rotate: number | undefined;
  readonly flip: boolean;
  readonly flop: boolean;
  /** Gaussian sigma, 0.3..1000. */
  readonly blur: number | undefined;
  /** Sharpen sigma; true = a mild default. */
  readonly sharpen: number | undefined;
  /** Metadata is stripped unless strip is false (EXIF orientation is applied first). */
  readonly strip: boolean;
  readonly webhook: WebhookTarget | undefined;
  readonly adjust: AdjustOptions | undefined;
  readonly filter: FilterOptions;
  /** auto.enhance: stretch levels to the full range (normalise). */
  readonly enhance: boolean;
  readonly border: BorderOptions | undefined;
  readonly padding: PaddingOptions | undefined;
  readonly mask: 'ellipse' | undefined;
  readonly watermark: WatermarkOptions | undefined;
  readonly output: OutputOptions;
  /** Also write the output into the customer's own bucket. */
  readonly store: CustomerStore | undefined;
}

/**
 * The `store` option: an S3 (or S3-compatible) bucket of the customer's. The credentials
 * are used for this one PUT and never logged, stored or echoed.
 */
export interface CustomerStore {
  readonly provider: 's3';
  readonly bucket: string;
  readonly region: string;
  /** The object key. */
  readonly path: string;
  /** An S3-compatible server's origin; undefined for AWS. Reached under the SSRF guard. */
  readonly endpoint: string | undefined;
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken: string | undefined };
  /** Also keep the temporary result (GET /v1/results/<id>, one hour): true, unless the bucket should be the only copy. */
  readonly temporary: boolean;
}

/** Where the outcome of an asynchronous job is POSTed, and how long after it is ready. */
export interface WebhookTarget {
  readonly url: string;
  /** Seconds to hold the delivery back after the job finished (the `{url, delay}` form); 0 by default. */
  readonly delaySeconds: number;
}

/** A customer's uploaded watermark, as stored (PNG), or undefined when it has none by that id. */
export type WatermarkSource = (id: string) => Promise<Buffer | undefined>;

/** Every limit is configurable, has a safe default, and is checked before the work it guards. */
export interface ImageLimits {
  readonly maxInputBytes: number;
  readonly maxInputPixels: number;
  readonly maxFrames: number;
  readonly maxOutputWidth: number;
  readonly maxOutputHeight: number;
  readonly timeoutMs: number;
  readonly allowSvg: boolean;
}

export const DEFAULT_LIMITS: ImageLimits = Object.freeze({
  maxInputBytes: 25 * 1024 * 1024,
  maxInputPixels: 50_000_000,
  maxFrames: 100,
  maxOutputWidth: 8192,
  maxOutputHeight: 8192,
  timeoutMs: 30_000,
  allowSvg: false,
});

/** Uploaded watermarks (backends/service/watermarks-store.ts). */
export interface WatermarkLimits {
  readonly maxBytes: number;
  readonly maxPixels: number;
}

/** A watermark is a logo: 1 MiB and 2048 × 2048 pixels are far beyond any real one. */
export const DEFAULT_WATERMARK_LIMITS: WatermarkLimits = Object.freeze({ maxBytes: 1024 * 1024, maxPixels: 2048 * 2048 });

export interface ImageInfo {
  readonly format: string;
  readonly width: number;
  readonly height: number;
  readonly bytes: number;
}

export interface ProcessResult {
  readonly data: Buffer;
  readonly input: ImageInfo;
  readonly output: ImageInfo;
  /** MIME type of data. */
  readonly contentType: string;
  /** What the work took (pixels decoded, encoders run), reported to the gateway to settle its price. */
  readonly work?: WorkReport;
}

export interface FaceBox {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

export interface Face {
  /** In the input image's pixel coordinates (after EXIF orientation). */
  readonly box: FaceBox;
  readonly score: number;
}

export interface Detection {
  readonly faces: readonly Face[];
  readonly width: number;
  readonly height: number;
}

/** Finds faces in an encoded image; implemented by the TensorFlow worker pool (faces/). */
export type FaceDetector = (image: Buffer) => Promise<Detection>;

/** A client-visible failure of the image work: an HttpError with only the statuses processing may answer. */
export class ImageError extends HttpError {
  declare readonly status: 400 | 404 | 413 | 415 | 422 | 502 | 503 | 504;

  constructor(status: ImageError['status'], code: string, message: string, field: string | undefined = undefined) {
    super(status, code, message, field);
  }
}
