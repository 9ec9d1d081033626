// The client's rotate (clockwise, multiples of 90) and flip/flop, after EXIF auto-orient.
// flip/flop mirror before rotate (sharp's order).
import { mapRect, type Rect } from '../geometry.js';
import { badField, type Job, type Step } from '../job.js';

function angleOf(job: Job): number {
  return job.opts.rotate ?? 0;
}

export const orient: Step = {
  check(job) {
    const angle = angleOf(job);
    const quarter = angle === 90 || angle === 270;
    if (job.animated && quarter) badField('rotate', 'animated images can only be rotated by 180');
    if (quarter) job.size = { width: job.oriented.height, height: job.oriented.width };
  },
  apply(pipe, job) {
    const angle = angleOf(job);
    // rotate before extract so sharp's order is the one mapRect models.
    if (angle !== 0) pipe = pipe.rotate(angle);
    if (job.opts.flip) pipe = pipe.flip();
    if (job.opts.flop) pipe = pipe.flop();
    return pipe;
  },
};

/** The client's rotation turns the output a quarter: widths of the oriented frame become heights. */
export function turnsQuarter(job: Job): boolean {
  const angle = angleOf(job);
  return angle === 90 || angle === 270;
}

/**
 * A rectangle of the oriented frame in the pipeline's frame, where extract cuts. sharp runs
 * flip/flop before extract only when a rotation is also requested.
 */
export function toPipelineFrame(job: Job, r: Rect): Rect {
  const angle = angleOf(job);
  if (angle === 0) return r;
  return mapRect(r, job.oriented.width, job.oriented.height, job.opts.flip, job.opts.flop, angle);
}
