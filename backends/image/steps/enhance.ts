// auto.enhance: stretch the levels to the full range.
import type { Step } from '../job.js';

export const enhance: Step = {
  apply: (pipe, job) => (job.opts.enhance ? pipe.normalise() : pipe),
};
