// sharpen: libvips' sharpen at the given sigma.
import type { Step } from '../job.js';

export const sharpen: Step = {
  apply: (pipe, job) => (job.opts.sharpen === undefined ? pipe : pipe.sharpen({ sigma: job.opts.sharpen })),
};
