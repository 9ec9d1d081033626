// blur: a Gaussian blur of the given sigma.
import type { Step } from '../job.js';

export const blur: Step = {
  apply: (pipe, job) => (job.opts.blur === undefined ? pipe : pipe.blur(job.opts.blur)),
};
