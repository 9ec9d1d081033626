// What the compositing steps (watermark → mask → padding → border) share. sharp runs its
// operations in a fixed internal order (extend before composite, one extend per
// pipeline), so each of these steps starts from the raw pixels of the step before; raw
// hand-offs cost a copy, not an encode.
import sharp, { type Sharp } from 'sharp';
import { badField, type Job } from '../job.js';
import type { Colour } from '../types.js';

export const WHITE: Colour = { r: 255, g: 255, b: 255, alpha: 1 };
export const CLEAR: Colour = { r: 0, g: 0, b: 0, alpha: 0 };

/** The check every compositing step makes: `field` names the option that asks for it. */
export function checkCompositing(job: Job, field: string): void {
  if (job.animated) badField(field, 'is not available for animated output');
  // The compositing steps work on decoded pixels, which carry no metadata to keep.
  if (!job.opts.strip) badField('strip', `false cannot be combined with ${field}`);
  job.composited = true;
}

/** The pipeline's pixels so far, as a new pipeline starting from them. */
export async function materialise(pipe: Sharp): Promise<{ img: Sharp; width: number; height: number; channels: number }> {
  const { data, info } = await pipe.raw().toBuffer({ resolveWithObject: true });
  const raw = { width: info.width, height: info.height, channels: info.channels };
  return { img: sharp(data, { raw }), ...raw };
}

/** Adds `sides` of `colour` around the pixels so far. */
export async function extend(pipe: Sharp, sides: { top: number; right: number; bottom: number; left: number }, colour: Colour): Promise<Sharp> {
  const base = await materialise(colour.alpha < 1 ? pipe.ensureAlpha() : pipe);
  return base.img.extend({ ...sides, background: colour });
}
