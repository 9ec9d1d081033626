// filter {negate, sepia, grayscale}, in that order.
import type { Step } from '../job.js';

/** Sepia tone as a colour matrix (the classic Microsoft values). */
const SEPIA: [[number, number, number], [number, number, number], [number, number, number]] = [
  [0.393, 0.769, 0.189],
  [0.349, 0.686, 0.168],
  [0.272, 0.534, 0.131],
];

export const filter: Step = {
  apply(pipe, job) {
    const f = job.opts.filter;
    if (f.negate) pipe = pipe.negate({ alpha: false });
    if (f.sepia) pipe = pipe.recomb(SEPIA);
    if (f.grayscale) pipe = pipe.grayscale();
    return pipe;
  },
};
