// The boundary types of the image service: what the HTTP layer hands to processing,
// what processing hands back, and the errors a client can see. Plain data, validated
// once at the edge of the service (options.ts), trusted inside.

export type OutputFormat = 'jpeg' | 'png' | 'webp' | 'avif' | 'gif';
export type InputFormat = 'jpeg' | 'png' | 'webp' | 'avif' | 'gif' | 'tiff' | 'heif' | 'svg';
export type Fit = 'cover' | 'contain' | 'fill' | 'inside' | 'outside';
export type CropMode = 'center' | 'attention' | 'entropy' | 'face';
export type OptimizeLevel = 'lossless' | 'low' | 'medium' | 'high';

export interface ResizeOptions {
  readonly width: number | undefined;
  readonly height: number | undefined;
  readonly fit: Fit;
  /** Never enlarge unless asked. */
  readonly upscale: boolean;
}

/** A crop by strategy (mode, optionally to an aspect ratio) or an explicit rectangle. */
export interface CropOptions {
  readonly mode: CropMode | undefined;
  readonly rect: { readonly x: number; readonly y: number; readonly width: number; readonly height: number } | undefined;
  /** width / height, from "16:9" or a number. */
  readonly aspect: number | undefined;
}

export interface ImageOptions {
  readonly resize: ResizeOptions | undefined;
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
}

/** Where the outcome of an asynchronous job is POSTed, and how long after it is ready. */
export interface WebhookTarget {
  readonly url: string;
  /** Seconds to hold the delivery back after the job finished (the `{url, delay}` form); 0 by default. */
  readonly delaySeconds: number;
}

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

/** A client-visible failure: status, a code from DESIGN.md, a message, the bad field if any. */
export class ImageError extends Error {
  constructor(
    readonly status: 400 | 404 | 413 | 415 | 422 | 502 | 503 | 504,
    readonly code: string,
    message: string,
    readonly field: string | undefined = undefined,
  ) {
    super(message);
  }
}
