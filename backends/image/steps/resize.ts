// resize {width, height, fit, gravity, upscale} and scale {percent}: the output's size,
// after rotate and crop. A strategy crop (smart-crop.ts) has already planned its own
// cover resize; this step then only checks it.
import sharp, { type ResizeOptions } from 'sharp';
import { position, type Size } from '../geometry.js';
import { alphaOut, badField, checkOutputSize, type Step } from '../job.js';
import type { Compass } from '../types.js';

export const resize: Step = {
  check(job) {
    const rs = job.opts.resize;
    const max = job.limits;
    if (rs) {
      if (rs.width !== undefined && rs.width > max.maxOutputWidth) badField('resize.width', `exceeds the maximum ${max.maxOutputWidth}`);
      if (rs.height !== undefined && rs.height > max.maxOutputHeight) badField('resize.height', `exceeds the maximum ${max.maxOutputHeight}`);
    }
    const scale = job.opts.scale === undefined ? undefined : job.opts.scale / 100;
    if (job.resize === undefined) {
      if (rs) {
        const placement = rs.gravity === 'attention' ? sharp.strategy.attention : rs.gravity === 'entropy' ? sharp.strategy.entropy : position(rs.gravity as Compass | undefined);
        job.resize = { width: rs.width, height: rs.height, fit: rs.fit, withoutEnlargement: !rs.upscale, position: placement };
      } else if (scale !== undefined) {
        job.resize = { width: Math.max(1, Math.round(job.size.width * scale)), height: Math.max(1, Math.round(job.size.height * scale)), fit: 'fill' };
      }
    }
    // Predicted, so an oversize result is refused before the work.
    job.size = predictSize(job.size, job.resize, (rs?.upscale ?? false) || scale !== undefined);
    checkOutputSize(job, scale !== undefined ? 'scale.percent' : 'resize');
  },
  apply(pipe, job) {
    if (job.resize === undefined) return pipe;
    // contain pads; transparent padding wherever the output format can carry alpha.
    return pipe.resize({ ...job.resize, background: { r: 255, g: 255, b: 255, alpha: alphaOut(job) ? 0 : 1 } });
  },
};

/** sharp's resize arithmetic, for refusing oversize output before doing the work. */
export function predictSize(base: Size, r: ResizeOptions | undefined, upscale: boolean): Size {
  if (!r) return base;
  const { width: bw, height: bh } = base;
  const w = r.width ?? undefined;
  const h = r.height ?? undefined;
  if (w === undefined || h === undefined) {
    let s = w !== undefined ? w / bw : h! / bh;
    if (!upscale && r.fit !== 'cover') s = Math.min(s, 1);
    return { width: Math.max(1, Math.round(bw * s)), height: Math.max(1, Math.round(bh * s)) };
  }
  switch (r.fit) {
    case 'inside':
    case 'outside': {
      const pick = r.fit === 'inside' ? Math.min : Math.max;
      let s = pick(w / bw, h / bh);
      if (!upscale) s = Math.min(s, 1);
      return { width: Math.max(1, Math.round(bw * s)), height: Math.max(1, Math.round(bh * s)) };
    }
    default:
      return { width: w, height: h };
  }
}
