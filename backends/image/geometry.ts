// Rectangles and sizes in the pipeline's frames (see process.ts for which frame is which).
import type { Compass } from './types.js';

export interface Size {
  readonly width: number;
  readonly height: number;
}

export interface Rect extends Size {
  readonly left: number;
  readonly top: number;
}

/**
 * Where a rectangle of the oriented frame lands after flip, flop, then a clockwise
 * rotation — the order sharp applies them when they precede extract/resize.
 */
export function mapRect(r: Rect, w: number, h: number, flip: boolean, flop: boolean, angle: number): Rect {
  let { left, top } = r;
  const { width, height } = r;
  if (flip) top = h - top - height;
  if (flop) left = w - left - width;
  switch (angle) {
    case 90:
      return { left: h - top - height, top: left, width: height, height: width };
    case 180:
      return { left: w - left - width, top: h - top - height, width, height };
    case 270:
      return { left: top, top: w - left - width, width: height, height: width };
    default:
      return { left, top, width, height };
  }
}

/** A compass point as sharp's `position`. */
export function position(g: Compass | undefined): string {
  return g === undefined || g === 'center' ? 'centre' : g;
}
