// The compositing steps that run on the finished pixels, after resize and colour:
// watermark → mask → padding → border. sharp runs its operations in a fixed internal
// order (extend before composite, one extend per pipeline), so each step here starts
// from the raw pixels of the step before; raw hand-offs cost a copy, not an encode.

import sharp, { type Sharp } from 'sharp';
import { ImageError, type Colour, type Compass, type ImageOptions, type WatermarkOptions, type WatermarkSource } from './types.js';

const WHITE: Colour = { r: 255, g: 255, b: 255, alpha: 1 };
const CLEAR: Colour = { r: 0, g: 0, b: 0, alpha: 0 };

/** The first option that needs this stage (for error messages), or undefined. */
export function needsFrame(opts: ImageOptions): string | undefined {
  if (opts.watermark !== undefined) return 'watermark';
  if (opts.mask !== undefined) return 'mask';
  if (opts.padding !== undefined) return 'padding';
  if (opts.border !== undefined) return 'border';
  return undefined;
}

/** Output size once padding and border are added (border adds 2 × size to each dimension). */
export function frameSize(size: { width: number; height: number }, opts: ImageOptions): { width: number; height: number } {
  const p = opts.padding;
  const b = opts.border?.size ?? 0;
  return {
    width: size.width + (p ? p.left + p.right : 0) + 2 * b,
    height: size.height + (p ? p.top + p.bottom : 0) + 2 * b,
  };
}

async function materialise(pipe: Sharp): Promise<{ img: Sharp; width: number; height: number; channels: number }> {
  const { data, info } = await pipe.raw().toBuffer({ resolveWithObject: true });
  const raw = { width: info.width, height: info.height, channels: info.channels };
  return { img: sharp(data, { raw }), ...raw };
}

function badField(field: string, message: string): never {
  throw new ImageError(400, 'bad_request', `${field}: ${message}`, field);
}

/** Offset of a `size` box along an `extent` for a compass point: start, middle or end, `pad` from the edge. */
function offset(extent: number, size: number, pad: number, start: boolean, end: boolean): number {
  if (start) return pad;
  if (end) return extent - size - pad;
  return Math.round((extent - size) / 2);
}

async function watermark(pipe: Sharp, w: WatermarkOptions, source: WatermarkSource | undefined): Promise<Sharp> {
  const stored = source === undefined ? undefined : await source(w.id);
  if (stored === undefined) badField('watermark.id', `no watermark "${w.id}" uploaded for this customer`);
  const base = await materialise(pipe);
  const roomW = base.width - 2 * w.padding;
  const roomH = base.height - 2 * w.padding;
  if (roomW < 1 || roomH < 1) badField('watermark.padding', `leaves no room in a ${base.width}x${base.height} image`);
  const mark = await sharp(stored)
    .resize({ width: Math.max(1, Math.min(roomW, Math.round(base.width * w.scale))), height: roomH, fit: 'inside' })
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (w.opacity < 1) {
    for (let i = 3; i < mark.data.length; i += 4) mark.data[i] = Math.round(mark.data[i]! * w.opacity);
  }
  const g: Compass = w.gravity;
  const left = offset(base.width, mark.info.width, w.padding, g.endsWith('west'), g.endsWith('east'));
  const top = offset(base.height, mark.info.height, w.padding, g.startsWith('north'), g.startsWith('south'));
  return base.img.composite([{ input: mark.data, raw: { width: mark.info.width, height: mark.info.height, channels: 4 }, left, top }]);
}

async function ellipse(pipe: Sharp): Promise<Sharp> {
  const base = await materialise(pipe.ensureAlpha());
  const { width: w, height: h } = base;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}"><ellipse cx="${w / 2}" cy="${h / 2}" rx="${w / 2}" ry="${h / 2}" fill="#fff"/></svg>`;
  // dest-in keeps the image where the ellipse is opaque and clears it elsewhere.
  return base.img.composite([{ input: Buffer.from(svg), blend: 'dest-in' }]);
}

async function extend(pipe: Sharp, sides: { top: number; right: number; bottom: number; left: number }, colour: Colour): Promise<Sharp> {
  const base = await materialise(colour.alpha < 1 ? pipe.ensureAlpha() : pipe);
  return base.img.extend({ ...sides, background: colour });
}

/** Runs the steps the options ask for; `alphaOut`: the output format can carry transparency. */
export async function applyFrame(pipe: Sharp, opts: ImageOptions, alphaOut: boolean, source: WatermarkSource | undefined): Promise<Sharp> {
  if (opts.watermark !== undefined) pipe = await watermark(pipe, opts.watermark, source);
  if (opts.mask === 'ellipse') pipe = await ellipse(pipe);
  if (opts.padding !== undefined) {
    const { color, ...sides } = opts.padding;
    pipe = await extend(pipe, sides, color ?? (alphaOut ? CLEAR : WHITE));
  }
  if (opts.border !== undefined) {
    const s = opts.border.size;
    pipe = await extend(pipe, { top: s, right: s, bottom: s, left: s }, opts.border.color);
  }
  // sharp flattens before it composites or extends: hand the encoder finished pixels so a
  // JPEG's flatten sees the mask and the transparent padding.
  return alphaOut ? pipe : (await materialise(pipe)).img;
}
