// Encode: the output format's encoder (encode.ts) at the options' settings, the lossless
// PNG search when it loses nothing, or for a still `format: auto` the smallest of the
// candidates the client accepts (auto-format.ts).
import sharp, { type Sharp } from 'sharp';
import { autoCandidates, encodeSmallest } from '../auto-format.js';
import { CONTENT_TYPE, encode as encodeAs, searchesLosslessPng, smallestLosslessPng, type EncodedImage } from '../encode.js';
import { badField, type Job, type Step } from '../job.js';
import { timeoutSeconds } from './decode.js';

/** Whether this libvips build can write JPEG 2000 (the prebuilt sharp binaries cannot). */
export const JP2_SUPPORTED = (sharp.format as unknown as Record<string, { output?: { buffer?: boolean } } | undefined>).jp2k?.output?.buffer === true;

export const encode: Step = {
  /** The encoder can honour the options; anything it would not read is refused rather than ignored. */
  check(job) {
    const { format, opts } = job;
    if (format === 'jp2' && !JP2_SUPPORTED) badField('format', 'jp2 (JPEG 2000) output is not available: this libvips was built without OpenJPEG');
    if (opts.lossless && (format === 'jpeg' || format === 'gif')) badField('lossless', `${format} cannot be lossless`);
    if (opts.output.encoding !== undefined && format !== 'jpeg' && format !== 'png') {
      badField('output.encoding', `applies to jpeg and png output, not ${format}`);
    }
    if (opts.output.chromaSubsampling !== undefined && format !== 'jpeg' && format !== 'avif' && format !== 'jp2') {
      badField('output.chroma_subsampling', `applies to jpeg, avif and jp2 output, not ${format}`);
    }
  },
};

/** An output and how many encodes it took (format: auto runs one per candidate, the lossless PNG search two). */
export interface Output extends EncodedImage {
  readonly encodes: number;
}

/** A still format: auto searches formats; anything else is encoded as asked. */
export function searchesFormat(job: Job): boolean {
  return job.opts.format === 'auto' && !job.animated;
}

/** The end of the pipeline: the pixels encoded. */
export async function encodeOutput(pipe: Sharp, job: Job): Promise<Output> {
  const { opts } = job;
  const meta = job.sniffed.metadata;
  const paletteInput = meta.isPalette === true;
  const seconds = timeoutSeconds(job);
  // The PNG search renders 8-bit pixels and drops metadata: only when that loses nothing.
  const pngSearchable = opts.strip && (meta.depth === undefined || meta.depth === 'uchar');
  if (searchesFormat(job)) {
    const lossless = opts.lossless || (paletteInput && opts.quality === undefined);
    const alpha = meta.hasAlpha || job.composited || job.resize?.fit === 'contain';
    const candidates = autoCandidates({ accepted: job.env.accepted, alpha, lossless });
    const smallest = await encodeSmallest(pipe, candidates, opts, paletteInput, pngSearchable && (lossless || searchesLosslessPng(opts)), seconds);
    return { ...smallest, encodes: candidates.length };
  }
  const format = job.format;
  const search = format === 'png' && pngSearchable && searchesLosslessPng(opts);
  const encoded = search
    ? await smallestLosslessPng(pipe, opts.output.encoding === 'progressive', seconds)
    : await encodeAs(pipe, format, opts, paletteInput).toBuffer({ resolveWithObject: true });
  // The lossless PNG search encodes twice (encode.ts).
  return { ...encoded, format, contentType: CONTENT_TYPE[format], encodes: search ? 2 : 1 };
}
