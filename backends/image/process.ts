// One image through sharp, as a list of steps (imgproxy's shape): every step's check runs
// first, in order, on the header alone (limits, options the output cannot honour, the
// planned geometry); then the decoder opens and every step adds its operation, in the
// same order; then the pixels are encoded. A new operation is a file in steps/ and a line
// in STEPS.
//
// Geometry conventions (documented in README.md):
// - crop.x/y/width/height and face boxes are in the *oriented input* frame — the image as
//   displayed after EXIF orientation, before `rotate`/`flip`/`flop` — the same frame
//   /v1/detect reports.
// - resize width/height and crop.aspect describe the *output*, after rotate.
// - flip/flop mirror before rotate (sharp's order).
//
// Errors: 413 payload_too_large (bytes, pixels, frames), 400 bad_request (a requested
// size or rectangle that cannot be honoured, naming the field), 415/422 from sniff.ts,
// 422 unprocessable_image (decoder failed mid-image, e.g. truncated), 504
// processing_timeout (limits.timeoutMs elapsed; our own work, so not upstream_timeout).

import { prepareJob, tooLarge, type JobEnv, type Step } from './job.js';
import { adjust } from './steps/adjust.js';
import { blur } from './steps/blur.js';
import { border } from './steps/border.js';
import { crop } from './steps/crop.js';
import { decode, openDecoder } from './steps/decode.js';
import { encode, encodeOutput, searchesFormat } from './steps/encode.js';
import { enhance } from './steps/enhance.js';
import { filter } from './steps/filter.js';
import { flatten } from './steps/flatten.js';
import { mask } from './steps/mask.js';
import { metadata } from './steps/metadata.js';
import { orient } from './steps/orient.js';
import { padding } from './steps/padding.js';
import { resize } from './steps/resize.js';
import { sharpen } from './steps/sharpen.js';
import { smartCrop } from './steps/smart-crop.js';
import { watermark } from './steps/watermark.js';
import { ImageError, type FaceDetector, type ImageLimits, type ImageOptions, type OutputFormat, type ProcessResult, type WatermarkSource } from './types.js';

/**
 * The pipeline, in order. sharp applies its own operations in a fixed internal order
 * whatever the call order; the compositing steps (watermark → mask → padding → border)
 * each start from the pixels of the steps before them, so their order is real.
 */
const STEPS: readonly Step[] = [
  decode, // frames and pixels within the limits
  orient, // rotate, flip, flop
  crop, // crop rectangle
  smartCrop, // crop by strategy (attention, entropy, face, gravity) to an aspect or size
  resize, // resize, scale; the output size checked
  adjust, // brightness, saturation, hue, contrast, gamma, unsharp
  enhance, // auto.enhance
  filter, // negate, sepia, grayscale
  blur,
  sharpen,
  watermark,
  mask,
  padding,
  border,
  flatten, // JPEG output: transparency onto white
  metadata, // strip: false
  encode, // the encoder can honour the options
];

function mapSharpError(err: unknown, limits: ImageLimits): ImageError {
  if (err instanceof ImageError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  if (/exceeds pixel limit/i.test(msg)) return new ImageError(413, 'payload_too_large', `image exceeds ${limits.maxInputPixels} pixels`);
  if (/timeout/i.test(msg)) return new ImageError(504, 'processing_timeout', `processing exceeded ${limits.timeoutMs} ms`);
  return new ImageError(422, 'unprocessable_image', 'the image could not be decoded');
}

export async function processImage(
  input: Buffer,
  opts: ImageOptions,
  limits: ImageLimits,
  detectFaces?: FaceDetector,
  watermarks?: WatermarkSource,
  accepted?: ReadonlySet<OutputFormat>,
): Promise<ProcessResult> {
  // Cheapest refusal first: nothing is parsed for an oversized body.
  if (input.length > limits.maxInputBytes) tooLarge(`input is ${input.length} bytes; the limit is ${limits.maxInputBytes}`);
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new ImageError(504, 'processing_timeout', `processing exceeded ${limits.timeoutMs} ms`)),
      limits.timeoutMs,
    );
    timer.unref();
  });
  const work = run(input, opts, limits, { detectFaces, watermarks, accepted });
  // The losing side of the race must not surface as an unhandled rejection.
  work.catch(() => undefined);
  try {
    return await Promise.race([work, guard]);
  } finally {
    clearTimeout(timer);
  }
}

async function run(input: Buffer, opts: ImageOptions, limits: ImageLimits, env: JobEnv): Promise<ProcessResult> {
  const job = await prepareJob(input, opts, limits, env);
  for (const step of STEPS) await step.check?.(job);
  let out;
  try {
    let pipe = openDecoder(job);
    for (const step of STEPS) if (step.apply !== undefined) pipe = await step.apply(pipe, job);
    out = await encodeOutput(pipe, job);
  } catch (err) {
    throw mapSharpError(err, limits);
  }
  const { data, info } = out;
  return {
    data,
    input: { format: job.sniffed.format, width: job.oriented.width, height: job.oriented.height, bytes: input.length },
    output: { format: out.format, width: info.width, height: job.animated ? (info.pageHeight ?? info.height) : info.height, bytes: data.length },
    contentType: out.contentType,
    // What the work took, for the gateway to price (common/work-report.ts).
    work: { pixels: job.decodedPixels, encodes: out.encodes, auto: searchesFormat(job), detect: job.facesDetected },
  };
}
