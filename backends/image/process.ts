// One image through sharp: limits first, then a single pipeline
// (auto-orient → rotate/flip/flop → crop → resize/scale → colour and filters → blur/sharpen),
// then, only when asked, the compositing steps (watermark → mask → padding → border,
// each on the pixels of the one before: see frame.ts), then encode.
//
// Geometry conventions (documented in README.md):
// - crop.x/y/width/height and face boxes are in the *oriented input* frame — the image as
//   displayed after EXIF orientation, before `rotate`/`flip`/`flop` — the same frame
//   /v1/detect reports.
// - resize width/height and crop.aspect describe the *output*, after rotate.
// - flip/flop mirror before rotate (sharp's order).
//
// Errors: 413 payload_too_large (bytes, pixels, frames), 400 bad_request (a requested
// size or rectangle that cannot be honoured, naming the field), 415/422 from sniff.ts,
// 422 unprocessable_image (decoder failed mid-image, e.g. truncated), 504
// processing_timeout (limits.timeoutMs elapsed; our own work, so not upstream_timeout).

import sharp, { type ResizeOptions, type Sharp } from 'sharp';
import { faceCropRegion } from '../faces/face-crop.js';
import { autoCandidates, encodeSmallest } from './auto-format.js';
import { CONTENT_TYPE, encode, searchesLosslessPng, smallestLosslessPng, type Encoded } from './encode.js';
import { applyFrame, frameSize, needsFrame } from './frame.js';
import { sniff, type Sniffed } from './sniff.js';
import {
  ImageError,
  type Compass,
  type Face,
  type Gravity,
  type WatermarkSource,
  type FaceDetector,
  type ImageLimits,
  type ImageOptions,
  type OutputFormat,
  type ProcessResult,
} from './types.js';

/** Sepia tone as a colour matrix (the classic Microsoft values). */
const SEPIA: [[number, number, number], [number, number, number], [number, number, number]] = [
  [0.393, 0.769, 0.189],
  [0.349, 0.686, 0.168],
  [0.272, 0.534, 0.131],
];

/** Whether this libvips build can write JPEG 2000 (the prebuilt sharp binaries cannot). */
export const JP2_SUPPORTED = (sharp.format as unknown as Record<string, { output?: { buffer?: boolean } } | undefined>).jp2k?.output?.buffer === true;

const ANIMATABLE = new Set(['gif', 'webp']);

interface Rect {
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * The output format when none is given, and of an animated `auto`, decided from the input
 * alone (a still `auto` encodes candidates instead: auto-format.ts):
 * - animated (GIF/WebP with > 1 frame) → webp (animated WebP is far smaller than GIF),
 *   gif for a client whose Accept takes gif and not webp;
 * - AVIF input → avif (re-encoding to WebP would usually grow it);
 * - everything else, alpha or not → webp.
 */
export function resolveAutoFormat(s: Sniffed, frames: number, accepted?: ReadonlySet<OutputFormat>): OutputFormat {
  if (frames > 1) return accepted !== undefined && !accepted.has('webp') && accepted.has('gif') ? 'gif' : 'webp';
  if (s.format === 'avif') return 'avif';
  return 'webp';
}

/** Which encoders read each output option; anything else is refused rather than ignored. */
function checkOutputOptions(format: OutputFormat, opts: ImageOptions): void {
  if (opts.output.encoding !== undefined && format !== 'jpeg' && format !== 'png') {
    badField('output.encoding', `applies to jpeg and png output, not ${format}`);
  }
  if (opts.output.chromaSubsampling !== undefined && format !== 'jpeg' && format !== 'avif' && format !== 'jp2') {
    badField('output.chroma_subsampling', `applies to jpeg, avif and jp2 output, not ${format}`);
  }
}

function position(g: Compass | undefined): string {
  return g === undefined || g === 'center' ? 'centre' : g;
}

/** Brightness, saturation, hue, contrast, gamma, unsharp, auto-enhance and the colour filters, in libvips' order. */
function colour(pipe: Sharp, opts: ImageOptions): Sharp {
  const a = opts.adjust;
  if (a !== undefined) {
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
    if (a.unsharp !== undefined) pipe = pipe.sharpen({ sigma: a.unsharp, m1: 1, m2: 3 });
  }
  if (opts.enhance) pipe = pipe.normalise();
  if (opts.filter.negate) pipe = pipe.negate({ alpha: false });
  if (opts.filter.sepia) pipe = pipe.recomb(SEPIA);
  if (opts.filter.grayscale) pipe = pipe.grayscale();
  return pipe;
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

/** The largest box of aspect `a` (w/h) inside w × h, centred sizes only. */
function aspectBox(w: number, h: number, a: number): { width: number; height: number } {
  if (w / h > a) return { width: Math.max(1, Math.min(w, Math.round(h * a))), height: h };
  return { width: w, height: Math.max(1, Math.min(h, Math.round(w / a))) };
}

function tooLarge(message: string): never {
  throw new ImageError(413, 'payload_too_large', message);
}

function badField(field: string, message: string): never {
  throw new ImageError(400, 'bad_request', `${field}: ${message}`, field);
}

function mapSharpError(err: unknown, limits: ImageLimits): ImageError {
  if (err instanceof ImageError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  if (/exceeds pixel limit/i.test(msg)) return new ImageError(413, 'payload_too_large', `image exceeds ${limits.maxInputPixels} pixels`);
  if (/timeout/i.test(msg)) return new ImageError(504, 'processing_timeout', `processing exceeded ${limits.timeoutMs} ms`);
  return new ImageError(422, 'unprocessable_image', 'the image could not be decoded');
}

export async function processImage(
  input: Buffer,
  opts: ImageOptions,
  limits: ImageLimits,
  detectFaces?: FaceDetector,
  watermarks?: WatermarkSource,
  accepted?: ReadonlySet<OutputFormat>,
): Promise<ProcessResult> {
  // Cheapest refusal first: nothing is parsed for an oversized body.
  if (input.length > limits.maxInputBytes) tooLarge(`input is ${input.length} bytes; the limit is ${limits.maxInputBytes}`);
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new ImageError(504, 'processing_timeout', `processing exceeded ${limits.timeoutMs} ms`)),
      limits.timeoutMs,
    );
    timer.unref();
  });
  const work = run(input, opts, limits, detectFaces, watermarks, accepted);
  // The losing side of the race must not surface as an unhandled rejection.
  work.catch(() => undefined);
  try {
    return await Promise.race([work, guard]);
  } finally {
    clearTimeout(timer);
  }
}

async function run(
  input: Buffer, opts: ImageOptions, limits: ImageLimits, detectFaces?: FaceDetector, watermarks?: WatermarkSource, accepted?: ReadonlySet<OutputFormat>,
): Promise<ProcessResult> {
  const sniffed = await sniff(input, limits);
  const meta = sniffed.metadata;

  // ---- limits from the header, before any pixel is decoded ----
  const frames = ANIMATABLE.has(sniffed.format) ? Math.max(1, meta.pages ?? 1) : 1;
  if (frames > limits.maxFrames) tooLarge(`input has ${frames} frames; the limit is ${limits.maxFrames}`);
  const pageHeight = frames > 1 ? (meta.pageHeight ?? meta.height) : meta.height;
  // A still `auto` is decided by encoding candidates at the end; until then its checks are WebP's.
  const format: OutputFormat = opts.format === undefined || opts.format === 'auto' ? resolveAutoFormat(sniffed, frames, accepted) : opts.format;
  const animated = frames > 1 && ANIMATABLE.has(format);
  const searchAuto = opts.format === 'auto' && !animated;
  const decodedPixels = meta.width * pageHeight * (animated ? frames : 1);
  if (decodedPixels > limits.maxInputPixels) tooLarge(`input decodes to ${decodedPixels} pixels; the limit is ${limits.maxInputPixels}`);

  if (format === 'jp2' && !JP2_SUPPORTED) badField('format', 'jp2 (JPEG 2000) output is not available: this libvips was built without OpenJPEG');
  if (opts.lossless && (format === 'jpeg' || format === 'gif')) badField('lossless', `${format} cannot be lossless`);
  checkOutputOptions(format, opts);
  const framed = needsFrame(opts);
  if (framed !== undefined && animated) badField(framed, 'is not available for animated output');
  // The compositing steps work on decoded pixels, which carry no metadata to keep.
  if (framed !== undefined && !opts.strip) badField('strip', `false cannot be combined with ${framed}`);
  const angle = opts.rotate ?? 0;
  if (animated && (angle === 90 || angle === 270)) badField('rotate', 'animated images can only be rotated by 180');

  // Oriented input frame (as displayed) and the frame after the client's rotate.
  const swapExif = (meta.orientation ?? 1) >= 5;
  const W = swapExif ? pageHeight : meta.width;
  const H = swapExif ? meta.width : pageHeight;
  const quarter = angle === 90 || angle === 270;
  const FW = quarter ? H : W;
  const FH = quarter ? W : H;
  // sharp runs flip/flop before extract only when a rotation is also requested.
  const rotatesBeforeExtract = angle !== 0;
  const toFinal = (r: Rect): Rect => (rotatesBeforeExtract ? mapRect(r, W, H, opts.flip, opts.flop, angle) : r);

  let extract: Rect | undefined;
  let resize: ResizeOptions | undefined;
  let detected = false;
  let base = { width: FW, height: FH };

  const crop = opts.crop;
  const rs = opts.resize;
  if (crop?.rect) {
    const r = crop.rect;
    if (r.x + r.width > W) badField(r.x >= W ? 'crop.x' : 'crop.width', `rectangle exceeds the image width ${W}`);
    if (r.y + r.height > H) badField(r.y >= H ? 'crop.y' : 'crop.height', `rectangle exceeds the image height ${H}`);
    extract = toFinal({ left: r.x, top: r.y, width: r.width, height: r.height });
    base = { width: extract.width, height: extract.height };
  }

  if (rs) {
    if (rs.width !== undefined && rs.width > limits.maxOutputWidth) badField('resize.width', `exceeds the maximum ${limits.maxOutputWidth}`);
    if (rs.height !== undefined && rs.height > limits.maxOutputHeight) badField('resize.height', `exceeds the maximum ${limits.maxOutputHeight}`);
  }

  const scale = opts.scale === undefined ? undefined : opts.scale / 100;
  // face/faces gravity on a resize is a face crop to the resize's width and height.
  const resizeFaces = rs?.gravity === 'face' || rs?.gravity === 'faces';
  const mode = crop?.mode ?? (resizeFaces ? 'face' : undefined);
  const gravity: Gravity | undefined = crop?.gravity ?? rs?.gravity;
  if (mode) {
    // Target output size of a strategy crop, in the output frame.
    let tw: number;
    let th: number;
    if (rs && rs.width !== undefined && rs.height !== undefined) {
      if (crop?.aspect !== undefined) badField('crop.aspect', 'conflicts with resize width and height');
      if (rs.fit !== 'cover') badField('resize.fit', 'crop modes need fit cover');
      tw = rs.width;
      th = rs.height;
    } else if (crop?.aspect !== undefined) {
      const box = aspectBox(base.width, base.height, crop.aspect);
      tw = rs?.width ?? (rs?.height !== undefined ? Math.max(1, Math.round(rs.height * crop.aspect)) : box.width);
      th = rs?.height ?? (rs?.width !== undefined ? Math.max(1, Math.round(rs.width / crop.aspect)) : box.height);
    } else {
      badField('crop.aspect', 'a crop mode needs crop.aspect or resize width and height');
    }
    let region: Rect | undefined;
    if (mode === 'face' && detectFaces) {
      detected = true;
      region = await faceRegion(input, detectFaces, W, H, quarter ? th : tw, quarter ? tw : th, gravity === 'face');
      if (region) {
        extract = toFinal(region);
        base = { width: extract.width, height: extract.height };
      }
    }
    // Never enlarge: shrink the target (keeping its aspect) to the full-resolution crop.
    const full = aspectBox(base.width, base.height, tw / th);
    if (!rs?.upscale && (tw > full.width || th > full.height)) {
      tw = full.width;
      th = full.height;
    }
    // scale is a percentage of the crop, so it may enlarge: that is what > 100 asks for.
    if (scale !== undefined) {
      tw = Math.max(1, Math.round(tw * scale));
      th = Math.max(1, Math.round(th * scale));
    }
    // mode face without gravity keeps its documented fallback (attention); face/faces gravity falls back to centre.
    const placement =
      region !== undefined ? 'centre'
        : mode === 'entropy' ? sharp.strategy.entropy
          : mode === 'attention' || (mode === 'face' && gravity === undefined) ? sharp.strategy.attention
            : position(gravity === 'face' || gravity === 'faces' ? undefined : (gravity as Compass | undefined));
    resize = { width: tw, height: th, fit: 'cover', position: placement };
  } else if (rs) {
    const placement = rs.gravity === 'attention' ? sharp.strategy.attention : rs.gravity === 'entropy' ? sharp.strategy.entropy : position(rs.gravity as Compass | undefined);
    resize = { width: rs.width, height: rs.height, fit: rs.fit, withoutEnlargement: !rs.upscale, position: placement };
  } else if (scale !== undefined) {
    resize = { width: Math.max(1, Math.round(base.width * scale)), height: Math.max(1, Math.round(base.height * scale)), fit: 'fill' };
  }

  // Output size, predicted so an oversize result is refused before the work.
  const out = predictSize(base, resize, (rs?.upscale ?? false) || scale !== undefined);
  if (out.width > limits.maxOutputWidth || out.height > limits.maxOutputHeight) {
    badField(scale !== undefined ? 'scale.percent' : 'resize', `output would be ${out.width}x${out.height}; the maximum is ${limits.maxOutputWidth}x${limits.maxOutputHeight}`);
  }
  const final = frameSize(out, opts);
  if (final.width > limits.maxOutputWidth || final.height > limits.maxOutputHeight) {
    badField(opts.border !== undefined ? 'border.size' : 'padding', `output would be ${final.width}x${final.height}; the maximum is ${limits.maxOutputWidth}x${limits.maxOutputHeight}`);
  }

  // ---- the pipeline ----
  // contain pads; transparent padding wherever the output format can carry alpha.
  const alphaOut = format !== 'jpeg';
  let pipe = sharp(input, {
    failOn: 'warning',
    limitInputPixels: limits.maxInputPixels,
    autoOrient: true,
    animated,
    pages: animated ? -1 : 1,
  }).timeout({ seconds: Math.max(1, Math.ceil(limits.timeoutMs / 1000)) });
  // rotate before extract so sharp's order is the one mapRect models.
  if (angle !== 0) pipe = pipe.rotate(angle);
  if (opts.flip) pipe = pipe.flip();
  if (opts.flop) pipe = pipe.flop();
  if (extract) pipe = pipe.extract(extract);
  if (resize) {
    pipe = pipe.resize({ ...resize, background: { r: 255, g: 255, b: 255, alpha: alphaOut ? 0 : 1 } });
  }
  pipe = colour(pipe, opts);
  if (opts.blur !== undefined) pipe = pipe.blur(opts.blur);
  if (opts.sharpen !== undefined) pipe = pipe.sharpen({ sigma: opts.sharpen });
  if (framed !== undefined) {
    try {
      pipe = await applyFrame(pipe, opts, alphaOut, watermarks);
    } catch (err) {
      throw mapSharpError(err, limits);
    }
  }
  // JPEG has no alpha; transparent pixels would otherwise show their (often black) colour.
  if ((meta.hasAlpha || framed !== undefined) && format === 'jpeg') pipe = pipe.flatten({ background: '#ffffff' });
  // Default output already drops EXIF/XMP/IPTC and converts to sRGB; keeping metadata
  // still converts to sRGB and tags it, so colours match either way.
  if (!opts.strip) pipe = pipe.withMetadata();
  const paletteInput = meta.isPalette === true;
  const timeoutSeconds = Math.max(1, Math.ceil(limits.timeoutMs / 1000));
  // The PNG search renders 8-bit pixels and drops metadata: only when that loses nothing.
  const pngSearchable = opts.strip && (meta.depth === undefined || meta.depth === 'uchar');

  let result: Encoded & { format: OutputFormat; contentType: string };
  let encodes = 1;
  try {
    if (searchAuto) {
      const lossless = opts.lossless || (paletteInput && opts.quality === undefined);
      const alpha = meta.hasAlpha || framed !== undefined || resize?.fit === 'contain';
      const candidates = autoCandidates({ accepted, alpha, lossless });
      encodes = candidates.length;
      result = await encodeSmallest(pipe, candidates, opts, paletteInput, pngSearchable && (lossless || searchesLosslessPng(opts)), timeoutSeconds);
    } else {
      const search = format === 'png' && pngSearchable && searchesLosslessPng(opts);
      // The lossless PNG search encodes twice (encode.ts).
      if (search) encodes = 2;
      const encoded = search
        ? await smallestLosslessPng(pipe, opts.output.encoding === 'progressive', timeoutSeconds)
        : await encode(pipe, format, opts, paletteInput).toBuffer({ resolveWithObject: true });
      result = { ...encoded, format, contentType: CONTENT_TYPE[format] };
    }
  } catch (err) {
    throw mapSharpError(err, limits);
  }
  const { data, info } = result;
  return {
    data,
    input: { format: sniffed.format, width: W, height: H, bytes: input.length },
    output: { format: result.format, width: info.width, height: animated ? (info.pageHeight ?? info.height) : info.height, bytes: data.length },
    contentType: result.contentType,
    work: { pixels: decodedPixels, encodes, auto: searchAuto, detect: detected },
  };
}

/** `prominent`: keep only the face with the largest area × score (gravity face) instead of all (faces). */
async function faceRegion(input: Buffer, detect: FaceDetector, W: number, H: number, tw: number, th: number, prominent: boolean): Promise<Rect | undefined> {
  let detection;
  try {
    detection = await detect(input);
  } catch (err) {
    if (err instanceof ImageError) throw err;
    throw new ImageError(503, 'unavailable', 'face detection failed');
  }
  // The detector may have looked at a scaled copy; bring boxes into our frame.
  const sx = detection.width > 0 ? W / detection.width : 1;
  const sy = detection.height > 0 ? H / detection.height : 1;
  const faces: Face[] = detection.faces.map((f) => ({
    score: f.score,
    box: { x: f.box.x * sx, y: f.box.y * sy, width: f.box.width * sx, height: f.box.height * sy },
  }));
  const weight = (f: Face): number => f.box.width * f.box.height * f.score;
  const chosen = prominent && faces.length > 1 ? [faces.reduce((a, b) => (weight(b) > weight(a) ? b : a))] : faces;
  const r = faceCropRegion(chosen, W, H, tw, th);
  if (!r) return undefined;
  // Someone else's arithmetic decides an extract: clamp so a slip cannot become a 422.
  const left = Math.max(0, Math.min(W - 1, Math.round(r.left)));
  const top = Math.max(0, Math.min(H - 1, Math.round(r.top)));
  const width = Math.max(1, Math.min(W - left, Math.round(r.width)));
  const height = Math.max(1, Math.min(H - top, Math.round(r.height)));
  return { left, top, width, height };
}

/** sharp's resize arithmetic, for refusing oversize output before doing the work. */
function predictSize(base: { width: number; height: number }, r: ResizeOptions | undefined, upscale: boolean): { width: number; height: number } {
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
