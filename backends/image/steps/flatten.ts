// JPEG has no alpha: transparent pixels would otherwise show their (often black) colour,
// so they go onto white.
import { alphaOut, type Step } from '../job.js';
import { materialise } from './composite.js';

export const flatten: Step = {
  async apply(pipe, job) {
    if (alphaOut(job)) return pipe;
    // sharp flattens before it composites or extends: hand it the finished pixels so the
    // flatten sees the mask and the transparent padding.
    if (job.composited) pipe = (await materialise(pipe)).img;
    if (job.sniffed.metadata.hasAlpha || job.composited) pipe = pipe.flatten({ background: '#ffffff' });
    return pipe;
  },
};
