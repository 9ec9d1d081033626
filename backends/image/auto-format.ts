// format: auto for a still image: encode every format that can carry it and that the
// client accepts, at settings calibrated to the same visible quality, and keep the
// smallest. The candidates are encoded at once (one libuv thread each, from clones of
// the one pipeline), so the CPU is bounded by the sum of at most three encodes and the
// latency by the slowest (AVIF's).
import type { Sharp } from 'sharp';
import { CONTENT_TYPE, encode, smallestLosslessPng, type Encoded, type EncodedImage } from './encode.js';
import type { ImageOptions, OptimizeLevel, OutputFormat } from './types.js';

/**
 * AVIF quality that scores (SSIM at the output size) at least what the level's WebP
 * encode scores on the same image, from a sweep of bench:optimize's photos (README,
 * "format: auto"). AVIF's own level defaults sit lower on that scale, so auto raises them.
 * Auto's AVIF is always effort 4 (sharp's default): the levels' effort 6-7 costs 3-5× the
 * CPU for a few per cent, and auto already pays for two or three encodes.
 */
export const AUTO_AVIF_QUALITY: Readonly<Record<OptimizeLevel | 'none', number>> = {
  // The lowest of the qualities swept that reached the WebP score on all 4 photos, at 640 px.
  none: 62,
  lossless: 62,
  low: 58,
  medium: 54,
  high: 50,
};

export interface AutoInput {
  /** What the client's Accept header allows; undefined: anything. */
  readonly accepted: ReadonlySet<OutputFormat> | undefined;
  /** The output can have transparent pixels (alpha input, contain padding, a frame step). */
  readonly alpha: boolean;
  /** Lossless candidates only: `lossless: true`, or a palette input (a graphic) without a quality. */
  readonly lossless: boolean;
}

/**
 * The candidates in order of preference on a tie. Lossless: WebP and PNG (AVIF lossless
 * is slower than both and larger than WebP's). Lossy: WebP, AVIF and, without alpha, JPEG.
 * Formats the client does not accept are dropped; when that leaves none, PNG if it takes
 * PNG (it carries anything, losslessly), else Accept is ignored (the result is still
 * downloadable from its URL).
 */
export function autoCandidates(a: AutoInput): OutputFormat[] {
  const preferred: OutputFormat[] = a.lossless ? ['webp', 'png'] : a.alpha ? ['webp', 'avif'] : ['webp', 'avif', 'jpeg'];
  if (a.accepted === undefined) return preferred;
  const taken = preferred.filter((f) => a.accepted!.has(f));
  if (taken.length > 0) return taken;
  return a.accepted.has('png') ? ['png'] : preferred;
}

/**
 * Encodes each candidate from a clone of `pipe` (the same decoded pixels; libvips decodes
 * per clone, which costs a few ms beside an encode) and returns the smallest.
 * `pngSearch`: the PNG candidate may use the two-trial lossless search (8-bit, stripped).
 */
export async function encodeSmallest(
  pipe: Sharp, candidates: readonly OutputFormat[], opts: ImageOptions, paletteInput: boolean, pngSearch: boolean, timeoutSeconds: number,
): Promise<EncodedImage> {
  const level = opts.optimize ?? 'none';
  const one = async (format: OutputFormat): Promise<EncodedImage> => {
    let out: Encoded;
    if (format === 'png' && pngSearch) {
      out = await smallestLosslessPng(pipe.clone(), false, timeoutSeconds);
    } else {
      const o: ImageOptions = format === 'avif' ? { ...opts, optimize: undefined, quality: opts.quality ?? AUTO_AVIF_QUALITY[level] } : opts;
      // A lossless candidate set asks PNG for its lossless level too.
      const png = format === 'png' && (opts.lossless || paletteInput) ? { ...o, optimize: 'lossless' as const, quality: undefined } : o;
      out = await encode(pipe.clone(), format, png, paletteInput).toBuffer({ resolveWithObject: true });
    }
    return { ...out, format, contentType: CONTENT_TYPE[format] };
  };
  const encoded = await Promise.all(candidates.map(one));
  return encoded.reduce((best, e) => (e.data.length < best.data.length ? e : best));
}
