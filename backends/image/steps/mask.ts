// mask: ellipse keeps the pixels inside the ellipse the output's box holds, clears the rest.
import type { Step } from '../job.js';
import { checkCompositing, materialise } from './composite.js';

export const mask: Step = {
  check(job) {
    if (job.opts.mask !== undefined) checkCompositing(job, 'mask');
  },
  async apply(pipe, job) {
    if (job.opts.mask !== 'ellipse') return pipe;
    const base = await materialise(pipe.ensureAlpha());
    const { width: w, height: h } = base;
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}"><ellipse cx="${w / 2}" cy="${h / 2}" rx="${w / 2}" ry="${h / 2}" fill="#fff"/></svg>`;
    // dest-in keeps the image where the ellipse is opaque and clears it elsewhere.
    return base.img.composite([{ input: Buffer.from(svg), blend: 'dest-in' }]);
  },
};
