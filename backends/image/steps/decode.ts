// Decode/guard: refuse an input too large to decode, from its header alone, and open the
// decoder with the same limits enforced by libvips itself.
import sharp, { type Sharp } from 'sharp';
import { tooLarge, type Job, type Step } from '../job.js';

export const decode: Step = {
  check(job) {
    const { frames, limits } = job;
    if (frames > limits.maxFrames) tooLarge(`input has ${frames} frames; the limit is ${limits.maxFrames}`);
    if (job.decodedPixels > limits.maxInputPixels) tooLarge(`input decodes to ${job.decodedPixels} pixels; the limit is ${limits.maxInputPixels}`);
  },
};

/** The libvips work may take this long (whole seconds, at least 1). */
export function timeoutSeconds(job: Job): number {
  return Math.max(1, Math.ceil(job.limits.timeoutMs / 1000));
}

/** The pipeline's start: the input decoded lazily, EXIF orientation applied, every frame when animated. */
export function openDecoder(job: Job): Sharp {
  return sharp(job.input, {
    failOn: 'warning',
    limitInputPixels: job.limits.maxInputPixels,
    autoOrient: true,
    animated: job.animated,
    pages: job.animated ? -1 : 1,
  }).timeout({ seconds: timeoutSeconds(job) });
}
