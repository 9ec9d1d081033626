// border {size, color}: a frame of `size` pixels on every side, outside any padding.
import { checkOutputSize, type Step } from '../job.js';
import { checkCompositing, extend } from './composite.js';

export const border: Step = {
  check(job) {
    const b = job.opts.border;
    if (b === undefined) return;
    checkCompositing(job, 'border');
    job.size = { width: job.size.width + 2 * b.size, height: job.size.height + 2 * b.size };
    checkOutputSize(job, 'border.size');
  },
  apply(pipe, job) {
    const b = job.opts.border;
    if (b === undefined) return pipe;
    const s = b.size;
    return extend(pipe, { top: s, right: s, bottom: s, left: s }, b.color);
  },
};
