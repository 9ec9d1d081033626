// Where to cut for `crop: face`: the largest region of the requested aspect ratio that
// fits in the image, placed so that the detected faces stay in it.
//
// Because the region is as large as fits, it always spans the whole image along one
// axis (full width or full height), so placement is a one-dimensional problem along the
// other axis:
//   1. the faces' bounding box fits → the region is centred on it, then pushed back
//      inside the image if it pokes out. Centring leaves equal room on both sides, the
//      largest margin any position can give, and the push never uncovers a face (the box
//      is inside the image), so no separate margin parameter is needed;
//   2. the faces span more than the region can hold → the region keeps as many whole
//      faces as possible (ties: higher total score, then nearer the faces' centre), and
//      is centred on the faces it keeps; the others are cut or left out. This is the
//      documented answer for "faces wider than the crop": no position can keep them all,
//      so the crop favours the biggest group it can keep whole rather than slicing the
//      outermost faces on both sides;
//   3. every face alone is bigger than the region → centred on the faces' bounding box.

import type { Face } from './types.js';

export interface CropRegion {
  left: number;
  top: number;
  width: number;
  height: number;
}

interface Span {
  lo: number;
  hi: number;
  score: number;
}

function checkDim(name: string, v: number): void {
  if (!Number.isFinite(v) || v <= 0) throw new RangeError(`${name} must be a positive finite number, got ${v}`);
}

/** Largest integer size of ratio w/h that fits in imageWidth × imageHeight. */
export function largestCrop(imageWidth: number, imageHeight: number, ratio: number): { width: number; height: number } {
  if (imageWidth / imageHeight >= ratio) {
    return { width: Math.min(imageWidth, Math.max(1, Math.round(imageHeight * ratio))), height: imageHeight };
  }
  return { width: imageWidth, height: Math.min(imageHeight, Math.max(1, Math.round(imageWidth / ratio))) };
}

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

/** Start of a window of `size` within [0, extent] holding [lo, hi], as near `ideal` as allowed; undefined if it can't. */
function holding(lo: number, hi: number, size: number, extent: number, ideal: number): number | undefined {
  const min = Math.max(0, Math.ceil(hi) - size);
  const max = Math.min(Math.floor(lo), extent - size);
  return min <= max ? clamp(ideal, min, max) : undefined;
}

function place(spans: readonly Span[], size: number, extent: number): number {
  const lo = Math.min(...spans.map((s) => s.lo));
  const hi = Math.max(...spans.map((s) => s.hi));
  const centre = (lo + hi) / 2;
  const ideal = Math.round(centre - size / 2);
  const all = holding(lo, hi, size, extent, ideal);
  if (all !== undefined) return all;

  // Case 2. An optimal window can always be slid until its start touches some face's
  // start or its end touches some face's end without losing a face, so those positions
  // are the only candidates: O(n²) for n faces, n is small (maxFaces).
  const candidates = new Set<number>();
  for (const s of spans) {
    candidates.add(clamp(Math.floor(s.lo), 0, extent - size));
    candidates.add(clamp(Math.ceil(s.hi) - size, 0, extent - size));
  }
  let best: { kept: Span[]; count: number; score: number; dist: number } | undefined;
  for (const start of candidates) {
    const kept = spans.filter((s) => s.lo >= start && s.hi <= start + size);
    const score = kept.reduce((a, s) => a + s.score, 0);
    const dist = Math.abs(start + size / 2 - centre);
    if (
      !best ||
      kept.length > best.count ||
      (kept.length === best.count && (score > best.score || (score === best.score && dist < best.dist)))
    ) {
      best = { kept, count: kept.length, score, dist };
    }
  }
  if (!best || best.count === 0) {
    // Case 3: every single face is bigger than the region.
    return clamp(ideal, 0, extent - size);
  }
  // Recentre on the faces kept; they fit together by construction.
  const kLo = Math.min(...best.kept.map((s) => s.lo));
  const kHi = Math.max(...best.kept.map((s) => s.hi));
  const kIdeal = Math.round((kLo + kHi) / 2 - size / 2);
  return holding(kLo, kHi, size, extent, kIdeal) ?? clamp(kIdeal, 0, extent - size);
}

/**
 * The crop region for `crop: face`, in image pixels, of aspect targetWidth/targetHeight
 * (only the ratio matters: the caller resizes the region to the target afterwards).
 * Undefined when no face overlaps the image. Face boxes are clipped to the image first.
 */
export function faceCropRegion(
  faces: readonly Face[],
  imageWidth: number,
  imageHeight: number,
  targetWidth: number,
  targetHeight: number,
): CropRegion | undefined {
  checkDim('imageWidth', imageWidth);
  checkDim('imageHeight', imageHeight);
  checkDim('targetWidth', targetWidth);
  checkDim('targetHeight', targetHeight);
  const W = Math.floor(imageWidth);
  const H = Math.floor(imageHeight);
  if (W < 1 || H < 1) throw new RangeError(`image must be at least 1×1, got ${imageWidth}×${imageHeight}`);

  const boxes = faces
    .map((f) => ({
      x0: clamp(f.box.x, 0, W),
      y0: clamp(f.box.y, 0, H),
      x1: clamp(f.box.x + f.box.width, 0, W),
      y1: clamp(f.box.y + f.box.height, 0, H),
      score: Number.isFinite(f.score) ? f.score : 0,
    }))
    .filter((b) => b.x1 > b.x0 && b.y1 > b.y0);
  if (boxes.length === 0) return undefined;

  const { width, height } = largestCrop(W, H, targetWidth / targetHeight);
  const left = width < W ? place(boxes.map((b) => ({ lo: b.x0, hi: b.x1, score: b.score })), width, W) : 0;
  const top = height < H ? place(boxes.map((b) => ({ lo: b.y0, hi: b.y1, score: b.score })), height, H) : 0;
  return { left, top, width, height };
}
