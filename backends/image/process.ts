// One image through sharp: limits first, then a single pipeline
// (auto-orient → rotate/flip/flop → crop → resize → blur/sharpen → encode).
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

import sharp, { type JpegOptions, type OutputInfo, type ResizeOptions, type Sharp } from 'sharp';
import { faceCropRegion } from '../faces/face-crop.js';
import { sniff, type Sniffed } from './sniff.js';
import {
  ImageError,
  type Face,
  type FaceDetector,
  type ImageLimits,
  type ImageOptions,
  type OptimizeLevel,
  type OutputFormat,
  type ProcessResult,
} from './types.js';

const CONTENT_TYPE: Readonly<Record<OutputFormat, string>> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  avif: 'image/avif',
  gif: 'image/gif',
};

const ANIMATABLE = new Set(['gif', 'webp']);

interface Rect {
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * auto → the best output for this input:
 * - animated (GIF/WebP with > 1 frame) → webp (animated WebP is far smaller than GIF);
 * - AVIF input → avif (re-encoding to WebP would usually grow it);
 * - everything else, alpha or not → webp (alpha supported; lossless when the input is a
 *   palette image, i.e. a graphic, and no quality was asked for).
 */
export function resolveAutoFormat(s: Sniffed, frames: number): OutputFormat {
  if (frames > 1) return 'webp';
  if (s.format === 'avif') return 'avif';
  return 'webp';
}

/**
 * Encoder settings per optimize level. `undefined` (no level) is sharp's defaults.
 * An explicit `quality` always wins over a level's default quality.
 *
 * | level    | jpeg (mozjpeg build)                              | png                                          | webp                             | avif            | gif                                |
 * |----------|---------------------------------------------------|----------------------------------------------|----------------------------------|-----------------|------------------------------------|
 * | (none)   | q80, Huffman optimised                            | zlib 6                                       | q80, effort 4                    | q50, effort 4   | effort 7                           |
 * | lossless | + progressive, optimised scans (same pixels)      | zlib 9 + adaptive filtering (same pixels)    | effort 6 (same quality)          | effort 6        | effort 10 (same palette size)      |
 * | low      | mozjpeg: trellis, deringing, quant table 3; q80   | zlib 9 + adaptive filtering (same pixels)    | effort 6; q78                    | effort 6; q50   | effort 10                          |
 * | medium   | mozjpeg; q75                                      | palette (libimagequant) q90, effort 7, zlib 9| effort 6, smartSubsample; q75    | effort 6; q45   | effort 10, interFrameMaxError 4    |
 * | high     | mozjpeg, 4:2:0; q65                               | palette q70, effort 10, zlib 9               | effort 6, smartSubsample; q65    | effort 7; q40   | effort 10, 128 colours, error 8    |
 *
 * `lossless: true` makes webp/avif lossless and forbids the lossy PNG palette; jpeg and gif
 * cannot be lossless and are refused with 400 naming `lossless`.
 */
function encode(pipe: Sharp, format: OutputFormat, opts: ImageOptions, paletteInput: boolean): Sharp {
  const level: OptimizeLevel | undefined = opts.optimize;
  const q = (dflt: number | undefined): number | undefined => opts.quality ?? dflt;
  switch (format) {
    case 'jpeg': {
      const base: JpegOptions = { quality: q(80), optimiseCoding: true };
      if (level === 'lossless') return pipe.jpeg({ ...base, progressive: true, optimiseScans: true });
      if (level === 'low') return pipe.jpeg({ ...base, mozjpeg: true });
      if (level === 'medium') return pipe.jpeg({ ...base, quality: q(75), mozjpeg: true });
      if (level === 'high') return pipe.jpeg({ ...base, quality: q(65), mozjpeg: true, chromaSubsampling: '4:2:0' });
      return pipe.jpeg(base);
    }
    case 'png': {
      // A quality without a level asks for lossy PNG, which only palette quantisation gives.
      if (opts.quality !== undefined && level === undefined) return pipe.png({ palette: true, quality: opts.quality, compressionLevel: 9 });
      if (level === 'lossless' || level === 'low' || ((level === 'medium' || level === 'high') && opts.lossless)) {
        return pipe.png({ compressionLevel: 9, adaptiveFiltering: true });
      }
      if (level === 'medium') return pipe.png({ palette: true, quality: q(90), effort: 7, compressionLevel: 9 });
      if (level === 'high') return pipe.png({ palette: true, quality: q(70), effort: 10, compressionLevel: 9 });
      return pipe.png({ compressionLevel: 6 });
    }
    case 'webp': {
      const lossless = opts.lossless || (opts.format === 'auto' && paletteInput && opts.quality === undefined);
      if (lossless) return pipe.webp({ lossless: true, effort: level === undefined ? 4 : 6 });
      if (level === undefined) return pipe.webp({ quality: q(80), effort: 4 });
      if (level === 'lossless') return pipe.webp({ quality: q(80), effort: 6 });
      // smartSubsample costs bytes for sharper chroma, so it only comes with the bigger cuts.
      if (level === 'low') return pipe.webp({ quality: q(78), effort: 6 });
      return pipe.webp({ quality: q(level === 'medium' ? 75 : 65), effort: 6, smartSubsample: true });
    }
    case 'avif': {
      if (opts.lossless) return pipe.avif({ lossless: true, effort: level === undefined ? 4 : 6 });
      if (level === undefined) return pipe.avif({ quality: q(50), effort: 4 });
      if (level === 'lossless' || level === 'low') return pipe.avif({ quality: q(50), effort: 6 });
      if (level === 'medium') return pipe.avif({ quality: q(45), effort: 6 });
      return pipe.avif({ quality: q(40), effort: 7 });
    }
    case 'gif': {
      if (level === undefined) return pipe.gif({ effort: 7 });
      if (level === 'lossless' || level === 'low') return pipe.gif({ effort: 10 });
      if (level === 'medium') return pipe.gif({ effort: 10, interFrameMaxError: 4 });
      return pipe.gif({ effort: 10, colours: 128, interFrameMaxError: 8 });
    }
  }
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
  const work = run(input, opts, limits, detectFaces);
  // The losing side of the race must not surface as an unhandled rejection.
  work.catch(() => undefined);
  try {
    return await Promise.race([work, guard]);
  } finally {
    clearTimeout(timer);
  }
}

async function run(input: Buffer, opts: ImageOptions, limits: ImageLimits, detectFaces?: FaceDetector): Promise<ProcessResult> {
  const sniffed = await sniff(input, limits);
  const meta = sniffed.metadata;

  // ---- limits from the header, before any pixel is decoded ----
  const frames = ANIMATABLE.has(sniffed.format) ? Math.max(1, meta.pages ?? 1) : 1;
  if (frames > limits.maxFrames) tooLarge(`input has ${frames} frames; the limit is ${limits.maxFrames}`);
  const pageHeight = frames > 1 ? (meta.pageHeight ?? meta.height) : meta.height;
  const format: OutputFormat = opts.format === undefined || opts.format === 'auto' ? resolveAutoFormat(sniffed, frames) : opts.format;
  const animated = frames > 1 && ANIMATABLE.has(format);
  const decodedPixels = meta.width * pageHeight * (animated ? frames : 1);
  if (decodedPixels > limits.maxInputPixels) tooLarge(`input decodes to ${decodedPixels} pixels; the limit is ${limits.maxInputPixels}`);

  if (opts.lossless && (format === 'jpeg' || format === 'gif')) badField('lossless', `${format} cannot be lossless`);
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

  if (crop?.mode) {
    // Target output size of a strategy crop, in the output frame.
    let tw: number;
    let th: number;
    if (rs && rs.width !== undefined && rs.height !== undefined) {
      if (crop.aspect !== undefined) badField('crop.aspect', 'conflicts with resize width and height');
      if (rs.fit !== 'cover') badField('resize.fit', 'crop modes need fit cover');
      tw = rs.width;
      th = rs.height;
    } else if (crop.aspect !== undefined) {
      const box = aspectBox(base.width, base.height, crop.aspect);
      tw = rs?.width ?? (rs?.height !== undefined ? Math.max(1, Math.round(rs.height * crop.aspect)) : box.width);
      th = rs?.height ?? (rs?.width !== undefined ? Math.max(1, Math.round(rs.width / crop.aspect)) : box.height);
    } else {
      badField('crop.aspect', 'a crop mode needs crop.aspect or resize width and height');
    }
    let region: Rect | undefined;
    if (crop.mode === 'face' && detectFaces) {
      region = await faceRegion(input, detectFaces, W, H, quarter ? th : tw, quarter ? tw : th);
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
    const position =
      region !== undefined ? 'centre' : crop.mode === 'entropy' ? sharp.strategy.entropy : crop.mode === 'center' ? 'centre' : sharp.strategy.attention;
    resize = { width: tw, height: th, fit: 'cover', position };
  } else if (rs) {
    resize = { width: rs.width, height: rs.height, fit: rs.fit, withoutEnlargement: !rs.upscale };
  }

  // Output size, predicted so an oversize result is refused before the work.
  const out = predictSize(base, resize, rs?.upscale ?? false);
  if (out.width > limits.maxOutputWidth || out.height > limits.maxOutputHeight) {
    badField('resize', `output would be ${out.width}x${out.height}; the maximum is ${limits.maxOutputWidth}x${limits.maxOutputHeight}`);
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
  if (opts.blur !== undefined) pipe = pipe.blur(opts.blur);
  if (opts.sharpen !== undefined) pipe = pipe.sharpen({ sigma: opts.sharpen });
  // JPEG has no alpha; transparent pixels would otherwise show their (often black) colour.
  if (meta.hasAlpha && format === 'jpeg') pipe = pipe.flatten({ background: '#ffffff' });
  // Default output already drops EXIF/XMP/IPTC and converts to sRGB; keeping metadata
  // still converts to sRGB and tags it, so colours match either way.
  if (!opts.strip) pipe = pipe.withMetadata();
  pipe = encode(pipe, format, opts, meta.isPalette === true);

  let result: { data: Buffer; info: OutputInfo };
  try {
    result = await pipe.toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw mapSharpError(err, limits);
  }
  const { data, info } = result;
  return {
    data,
    input: { format: sniffed.format, width: W, height: H, bytes: input.length },
    output: { format, width: info.width, height: animated ? (info.pageHeight ?? info.height) : info.height, bytes: data.length },
    contentType: CONTENT_TYPE[format],
  };
}

async function faceRegion(input: Buffer, detect: FaceDetector, W: number, H: number, tw: number, th: number): Promise<Rect | undefined> {
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
  const r = faceCropRegion(faces, W, H, tw, th);
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
