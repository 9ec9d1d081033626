// crop.x/y/width/height: a rectangle of the oriented input frame (the image as displayed,
// before rotate; the frame /v1/detect reports), cut out before resize.
import { badField, type Step } from '../job.js';
import { toPipelineFrame } from './orient.js';

export const crop: Step = {
  check(job) {
    const r = job.opts.crop?.rect;
    if (r === undefined) return;
    const { width: W, height: H } = job.oriented;
    if (r.x + r.width > W) badField(r.x >= W ? 'crop.x' : 'crop.width', `rectangle exceeds the image width ${W}`);
    if (r.y + r.height > H) badField(r.y >= H ? 'crop.y' : 'crop.height', `rectangle exceeds the image height ${H}`);
    job.extract = toPipelineFrame(job, { left: r.x, top: r.y, width: r.width, height: r.height });
    job.size = { width: job.extract.width, height: job.extract.height };
  },
  apply(pipe, job) {
    return job.extract === undefined ? pipe : pipe.extract(job.extract);
  },
};
