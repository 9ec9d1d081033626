// padding {top, right, bottom, left, color}: room added around the output; transparent by
// default where the output format has alpha, else white.
import { alphaOut, checkOutputSize, type Step } from '../job.js';
import { CLEAR, WHITE, checkCompositing, extend } from './composite.js';

export const padding: Step = {
  check(job) {
    const p = job.opts.padding;
    if (p === undefined) return;
    checkCompositing(job, 'padding');
    job.size = { width: job.size.width + p.left + p.right, height: job.size.height + p.top + p.bottom };
    checkOutputSize(job, 'padding');
  },
  apply(pipe, job) {
    if (job.opts.padding === undefined) return pipe;
    const { color, ...sides } = job.opts.padding;
    return extend(pipe, sides, color ?? (alphaOut(job) ? CLEAR : WHITE));
  },
};
