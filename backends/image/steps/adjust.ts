// adjust {brightness, saturation, hue, contrast, gamma, unsharp}.
import type { Step } from '../job.js';

export const adjust: Step = {
  apply(pipe, job) {
    const a = job.opts.adjust;
    if (a === undefined) return pipe;
    if (a.brightness !== undefined || a.saturation !== undefined || a.hue !== undefined) {
      pipe = pipe.modulate({
        ...(a.brightness !== undefined ? { brightness: a.brightness } : {}),
        ...(a.saturation !== undefined ? { saturation: a.saturation } : {}),
        ...(a.hue !== undefined ? { hue: a.hue } : {}),
      });
    }
    // Contrast pivots on mid-grey, so 1 is the identity and 0 is flat grey.
    if (a.contrast !== undefined) pipe = pipe.linear(a.contrast, 128 * (1 - a.contrast));
    // sharp's output gamma g maps v to v^(1/g): above 1 brightens, as in ImageMagick's -gamma.
    if (a.gamma !== undefined) pipe = pipe.gamma(1, a.gamma);
    // The `sharpen` step comes later and, being the same libvips operation, wins when both are asked.
    if (a.unsharp !== undefined) pipe = pipe.sharpen({ sigma: a.unsharp, m1: 1, m2: 3 });
    return pipe;
  },
};
