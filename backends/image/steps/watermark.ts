// watermark {id, gravity, padding, opacity, scale}: the customer's uploaded image over the
// output, scaled to a fraction of its width, placed at a compass point.
import sharp from 'sharp';
import { badField, type Step } from '../job.js';
import type { Compass } from '../types.js';
import { checkCompositing, materialise } from './composite.js';

/** Offset of a `size` box along an `extent` for a compass point: start, middle or end, `pad` from the edge. */
function offset(extent: number, size: number, pad: number, start: boolean, end: boolean): number {
  if (start) return pad;
  if (end) return extent - size - pad;
  return Math.round((extent - size) / 2);
}

export const watermark: Step = {
  check(job) {
    if (job.opts.watermark !== undefined) checkCompositing(job, 'watermark');
  },
  async apply(pipe, job) {
    const w = job.opts.watermark;
    if (w === undefined) return pipe;
    const source = job.env.watermarks;
    const stored = source === undefined ? undefined : await source(w.id);
    if (stored === undefined) badField('watermark.id', `no watermark "${w.id}" uploaded for this customer`);
    const base = await materialise(pipe);
    const roomW = base.width - 2 * w.padding;
    const roomH = base.height - 2 * w.padding;
    if (roomW < 1 || roomH < 1) badField('watermark.padding', `leaves no room in a ${base.width}x${base.height} image`);
    const mark = await sharp(stored)
      .resize({ width: Math.max(1, Math.min(roomW, Math.round(base.width * w.scale))), height: roomH, fit: 'inside' })
      .ensureAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (w.opacity < 1) {
      for (let i = 3; i < mark.data.length; i += 4) mark.data[i] = Math.round(mark.data[i]! * w.opacity);
    }
    const g: Compass = w.gravity;
    const left = offset(base.width, mark.info.width, w.padding, g.endsWith('west'), g.endsWith('east'));
    const top = offset(base.height, mark.info.height, w.padding, g.startsWith('north'), g.startsWith('south'));
    return base.img.composite([{ input: mark.data, raw: { width: mark.info.width, height: mark.info.height, channels: 4 }, left, top }]);
  },
};
