// Validation of client options: the only place untrusted option JSON is looked at.
// Everything downstream trusts ImageOptions, so every rule lives here and every
// refusal names the field path the client has to fix.

import {
  ImageError,
  type AdjustOptions,
  type BorderOptions,
  type Colour,
  type Compass,
  type CropMode,
  type Gravity,
  type OutputOptions,
  type PaddingOptions,
  type WatermarkOptions,
  type CropOptions,
  type Fit,
  type ImageOptions,
  type OptimizeLevel,
  type OutputFormat,
  type ResizeOptions,
  type WebhookTarget,
  type CustomerStore,
} from './types.js';

const FITS: readonly Fit[] = ['cover', 'contain', 'fill', 'inside', 'outside'];
const CROP_MODES: readonly CropMode[] = ['center', 'attention', 'entropy', 'face'];
const FORMATS: readonly (OutputFormat | 'auto')[] = ['jpeg', 'png', 'webp', 'avif', 'gif', 'jp2', 'auto'];
const COMPASS: readonly Compass[] = ['center', 'north', 'northeast', 'east', 'southeast', 'south', 'southwest', 'west', 'northwest'];
const GRAVITIES: readonly Gravity[] = [...COMPASS, 'face', 'faces', 'attention', 'entropy'];
/** Border and padding are frames, not canvases: a few thousand pixels is already absurd. */
const MAX_FRAME = 2000;
/** Every top-level option; the OpenAPI document's ImageOptions must list exactly these (tested). */
export const OPTION_NAMES: readonly string[] = [
  'resize', 'scale', 'crop', 'format', 'quality', 'lossless', 'optimize', 'rotate', 'flip', 'flop', 'blur', 'sharpen', 'strip', 'webhook',
  'store', 'adjust', 'filter', 'auto', 'border', 'padding', 'mask', 'watermark', 'output',
];
export const WATERMARK_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
const OPTIMIZE: readonly OptimizeLevel[] = ['lossless', 'low', 'medium', 'high'];
/** Sharpen sigma used for `sharpen: true`: visible on downscaled photos without halos. */
export const DEFAULT_SHARPEN_SIGMA = 1;
/** Upper bound on any pixel count a client can name; the real caps are ImageLimits. */
const MAX_DIMENSION = 100_000;
/** Options are tiny; a huge header or field is an attack or a mistake. */
const MAX_OPTIONS_TEXT = 16 * 1024;

function bad(field: string, message: string): never {
  throw new ImageError(400, 'bad_request', `${field}: ${message}`, field);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkKeys(obj: Record<string, unknown>, allowed: readonly string[], prefix: string): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) bad(prefix ? `${prefix}.${key}` : key, 'unknown option');
  }
}

function optBool(v: unknown, field: string, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') bad(field, 'must be true or false');
  return v;
}

function optInt(v: unknown, field: string, min: number, max: number): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    bad(field, `must be an integer from ${min} to ${max}`);
  }
  return v;
}

function optEnum<T extends string>(v: unknown, field: string, values: readonly T[]): T | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
    bad(field, `must be one of ${values.join(', ')}`);
  }
  return v as T;
}

function parseResize(v: unknown): ResizeOptions | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isPlainObject(v)) bad('resize', 'must be an object');
  checkKeys(v, ['width', 'height', 'fit', 'upscale', 'gravity'], 'resize');
  const width = optInt(v.width, 'resize.width', 1, MAX_DIMENSION);
  const height = optInt(v.height, 'resize.height', 1, MAX_DIMENSION);
  if (width === undefined && height === undefined) bad('resize', 'needs width or height');
  const fit = optEnum(v.fit, 'resize.fit', FITS) ?? 'cover';
  const gravity = optEnum(v.gravity, 'resize.gravity', GRAVITIES);
  if (gravity !== undefined) {
    // Only these fits leave a choice of where the image goes.
    if (fit !== 'cover' && fit !== 'contain') bad('resize.gravity', 'needs fit cover or contain');
    if (width === undefined || height === undefined) bad('resize.gravity', 'needs resize width and height');
    if (fit === 'contain' && !(COMPASS as readonly string[]).includes(gravity)) bad('resize.gravity', `with fit contain must be one of ${COMPASS.join(', ')}`);
  }
  return { width, height, fit, upscale: optBool(v.upscale, 'resize.upscale', false), gravity };
}

function optNumber(v: unknown, field: string, min: number, max: number): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) bad(field, `must be a number from ${min} to ${max}`);
  return v;
}

function optObject(v: unknown, field: string, keys: readonly string[]): Record<string, unknown> | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isPlainObject(v)) bad(field, 'must be an object');
  checkKeys(v, keys, field);
  return v;
}

/** "#rgb", "#rrggbb", "#rrggbbaa" or "transparent". */
export function parseColour(v: unknown, field: string): Colour | undefined {
  if (v === undefined || v === null) return undefined;
  if (v === 'transparent') return { r: 0, g: 0, b: 0, alpha: 0 };
  const m = typeof v === 'string' ? /^#([0-9a-f]{3}|[0-9a-f]{6}|[0-9a-f]{8})$/i.exec(v) : null;
  if (!m) bad(field, 'must be "#rgb", "#rrggbb", "#rrggbbaa" or "transparent"');
  const hex = m[1]!.length === 3 ? [...m[1]!].map((c) => c + c).join('') : m[1]!;
  const byte = (i: number): number => parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return { r: byte(0), g: byte(1), b: byte(2), alpha: hex.length === 8 ? Math.round((byte(3) / 255) * 1000) / 1000 : 1 };
}

function parseScale(v: unknown): number | undefined {
  const o = optObject(v, 'scale', ['percent']);
  if (o === undefined) return undefined;
  const p = optNumber(o.percent, 'scale.percent', 1, 1000);
  if (p === undefined) bad('scale.percent', 'is required');
  return p;
}

function parseAdjust(v: unknown): AdjustOptions | undefined {
  const o = optObject(v, 'adjust', ['brightness', 'contrast', 'saturation', 'gamma', 'hue', 'unsharp']);
  if (o === undefined) return undefined;
  return {
    brightness: optNumber(o.brightness, 'adjust.brightness', 0, 10),
    contrast: optNumber(o.contrast, 'adjust.contrast', 0, 10),
    saturation: optNumber(o.saturation, 'adjust.saturation', 0, 10),
    gamma: optNumber(o.gamma, 'adjust.gamma', 1, 3),
    hue: optInt(o.hue, 'adjust.hue', -360, 360),
    unsharp: optNumber(o.unsharp, 'adjust.unsharp', 0.3, 10),
  };
}

function parseBorder(v: unknown): BorderOptions | undefined {
  const o = optObject(v, 'border', ['size', 'color']);
  if (o === undefined) return undefined;
  const size = optInt(o.size, 'border.size', 1, MAX_FRAME);
  if (size === undefined) bad('border.size', 'is required');
  return { size, color: parseColour(o.color, 'border.color') ?? { r: 0, g: 0, b: 0, alpha: 1 } };
}

function parsePadding(v: unknown): PaddingOptions | undefined {
  const o = optObject(v, 'padding', ['top', 'right', 'bottom', 'left', 'color']);
  if (o === undefined) return undefined;
  const side = (k: 'top' | 'right' | 'bottom' | 'left'): number => optInt(o[k], `padding.${k}`, 0, MAX_FRAME) ?? 0;
  const p = { top: side('top'), right: side('right'), bottom: side('bottom'), left: side('left'), color: parseColour(o.color, 'padding.color') };
  if (p.top + p.right + p.bottom + p.left === 0) bad('padding', 'needs a positive top, right, bottom or left');
  return p;
}

function parseMask(v: unknown): 'ellipse' | undefined {
  const o = optObject(v, 'mask', ['shape']);
  if (o === undefined) return undefined;
  const shape = optEnum(o.shape, 'mask.shape', ['ellipse'] as const);
  if (shape === undefined) bad('mask.shape', 'is required');
  return shape;
}

function parseWatermark(v: unknown): WatermarkOptions | undefined {
  const o = optObject(v, 'watermark', ['id', 'gravity', 'padding', 'opacity', 'scale']);
  if (o === undefined) return undefined;
  if (typeof o.id !== 'string' || !WATERMARK_ID_RE.test(o.id)) bad('watermark.id', 'must be 1 to 64 letters, digits, _ or -');
  return {
    id: o.id,
    gravity: optEnum(o.gravity, 'watermark.gravity', COMPASS) ?? 'southeast',
    padding: optInt(o.padding, 'watermark.padding', 0, MAX_FRAME) ?? 0,
    opacity: optNumber(o.opacity, 'watermark.opacity', 0, 1) ?? 1,
    // Below 1 % of the width a watermark is a speck; the fraction is of the output width.
    scale: optNumber(o.scale, 'watermark.scale', 0.01, 1) ?? 0.25,
  };
}

function parseOutput(v: unknown): OutputOptions {
  const o = optObject(v, 'output', ['encoding', 'chroma_subsampling']);
  return {
    encoding: optEnum(o?.encoding, 'output.encoding', ['baseline', 'progressive'] as const),
    chromaSubsampling: optEnum(o?.chroma_subsampling, 'output.chroma_subsampling', ['4:4:4', '4:2:0'] as const),
  };
}

function parseAuto(v: unknown): boolean {
  const o = optObject(v, 'auto', ['enhance']);
  return optBool(o?.enhance, 'auto.enhance', false);
}

function parseAspect(v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number') {
    // 1:100 either way is already a banner; beyond that it is a typo.
    if (!Number.isFinite(v) || v < 0.01 || v > 100) bad('crop.aspect', 'must be a ratio from 0.01 to 100');
    return v;
  }
  if (typeof v === 'string') {
    const m = /^(\d{1,5}(?:\.\d{1,4})?):(\d{1,5}(?:\.\d{1,4})?)$/.exec(v.trim());
    if (!m) bad('crop.aspect', 'must be "W:H" like "16:9" or a number');
    const w = Number(m[1]);
    const h = Number(m[2]);
    if (w <= 0 || h <= 0) bad('crop.aspect', 'both sides must be positive');
    return parseAspect(w / h);
  }
  bad('crop.aspect', 'must be "W:H" like "16:9" or a number');
}

function parseCrop(v: unknown): CropOptions | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return parseCrop({ mode: v });
  if (!isPlainObject(v)) bad('crop', 'must be an object');
  checkKeys(v, ['mode', 'x', 'y', 'width', 'height', 'aspect', 'gravity'], 'crop');
  const gravity = optEnum(v.gravity, 'crop.gravity', GRAVITIES);
  if (gravity !== undefined && v.mode !== undefined) bad('crop.gravity', 'cannot be combined with crop.mode');
  const mode = gravity !== undefined ? gravityMode(gravity) : optEnum(v.mode, 'crop.mode', CROP_MODES);
  const rectFields = ['x', 'y', 'width', 'height'] as const;
  const present = rectFields.filter((k) => v[k] !== undefined);
  let rect: CropOptions['rect'];
  if (present.length > 0) {
    const missing = rectFields.find((k) => v[k] === undefined);
    if (missing) bad(`crop.${missing}`, 'an explicit rectangle needs x, y, width and height');
    rect = {
      x: optInt(v.x, 'crop.x', 0, MAX_DIMENSION)!,
      y: optInt(v.y, 'crop.y', 0, MAX_DIMENSION)!,
      width: optInt(v.width, 'crop.width', 1, MAX_DIMENSION)!,
      height: optInt(v.height, 'crop.height', 1, MAX_DIMENSION)!,
    };
    if (mode !== undefined) bad(gravity !== undefined ? 'crop.gravity' : 'crop.mode', 'cannot be combined with an explicit rectangle');
  }
  const aspect = parseAspect(v.aspect);
  if (rect && aspect !== undefined) bad('crop.aspect', 'cannot be combined with an explicit rectangle');
  if (!rect && mode === undefined && aspect === undefined) bad('crop', 'needs mode, aspect or x/y/width/height');
  return { mode: rect ? undefined : (mode ?? (aspect !== undefined ? 'center' : undefined)), rect, aspect, gravity };
}

function gravityMode(g: Gravity): CropMode {
  if (g === 'face' || g === 'faces') return 'face';
  if (g === 'attention' || g === 'entropy') return g;
  return 'center';
}

function parseSharpen(v: unknown, field: string): number | undefined {
  if (v === undefined || v === null || v === false) return undefined;
  if (v === true) return DEFAULT_SHARPEN_SIGMA;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0.000001 || v > 10) {
    bad(field, 'must be true or a sigma from 0.000001 to 10');
  }
  return v;
}

function parseBlur(v: unknown, field: string): number | undefined {
  if (v === undefined || v === null || v === false) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0.3 || v > 1000) bad(field, 'must be a sigma from 0.3 to 1000');
  return v;
}

function parseRotate(v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v % 90 !== 0 || Math.abs(v) > 3600) {
    bad('rotate', 'must be a multiple of 90');
  }
  const norm = ((v % 360) + 360) % 360;
  return norm === 0 ? undefined : norm;
}

// A day: a delivery held back longer would announce a result that expired long ago.
const MAX_WEBHOOK_DELAY_S = 86_400;

/** `webhook` is a URL, or `{url, delay}` with delay in seconds. */
function parseWebhook(v: unknown): WebhookTarget | undefined {
  if (v === undefined || v === null) return undefined;
  if (isPlainObject(v)) {
    checkKeys(v, ['url', 'delay'], 'webhook');
    return { url: webhookUrl(v.url, 'webhook.url'), delaySeconds: optInt(v.delay, 'webhook.delay', 0, MAX_WEBHOOK_DELAY_S) ?? 0 };
  }
  return { url: webhookUrl(v, 'webhook'), delaySeconds: 0 };
}

function webhookUrl(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length > 2048) bad(field, 'must be an http(s) URL');
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    bad(field, 'must be an http(s) URL');
  }
  // SSRF is judged at connect time by the delivery code; only the shape is checked here.
  if (url.protocol !== 'http:' && url.protocol !== 'https:') bad(field, 'must be an http(s) URL');
  return v;
}

/** S3's bucket naming rules (3-63 of a-z 0-9 . -, alphanumeric at both ends). */
export function isBucketName(name: string): boolean {
  return /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name);
}
const REGION_RE = /^[a-z]{2}(?:-[a-z0-9]+){1,4}$/;

/** `store`: the shape only; the bucket itself answers at write time. Values are never echoed in errors. */
function parseStore(v: unknown): CustomerStore | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isPlainObject(v)) bad('store', 'must be an object {provider, bucket, region, path, credentials}');
  checkKeys(v, ['provider', 'bucket', 'region', 'path', 'credentials', 'endpoint', 'temporary'], 'store');
  if (v.temporary !== undefined && typeof v.temporary !== 'boolean') bad('store.temporary', 'must be true (also keep the one-hour result) or false (the bucket only)');
  if (v.provider !== 's3') bad('store.provider', 'must be "s3"');
  if (typeof v.bucket !== 'string' || !isBucketName(v.bucket)) bad('store.bucket', 'must be an S3 bucket name (3-63 of a-z 0-9 . -)');
  const region = v.region ?? 'us-east-1';
  if (typeof region !== 'string' || !REGION_RE.test(region)) bad('store.region', 'must be a region name like eu-west-1');
  if (typeof v.path !== 'string' || v.path.length === 0 || v.path.length > 1024 || v.path.startsWith('/') || /[\x00-\x1f\x7f]/.test(v.path)) {
    bad('store.path', 'must be an object key: 1-1024 characters, no leading /, no control characters');
  }
  let endpoint: string | undefined;
  if (v.endpoint !== undefined) {
    let u: URL | undefined;
    try { u = typeof v.endpoint === 'string' ? new URL(v.endpoint) : undefined; } catch { u = undefined; }
    if (u === undefined || (u.protocol !== 'http:' && u.protocol !== 'https:') || u.username !== '' || u.password !== '' || u.pathname !== '/' || u.search !== '') {
      bad('store.endpoint', 'must be an http(s) origin like https://s3.example.com');
    }
    endpoint = u.origin;
  }
  const c = v.credentials;
  if (!isPlainObject(c)) bad('store.credentials', 'must be an object {accessKeyId, secretAccessKey, sessionToken?}');
  checkKeys(c, ['accessKeyId', 'secretAccessKey', 'sessionToken'], 'store.credentials');
  const str = (x: unknown, field: string, max: number): string => {
    if (typeof x !== 'string' || x.length === 0 || x.length > max || /[^\x21-\x7e]/.test(x)) bad(field, `must be 1-${max} printable characters`);
    return x;
  };
  return {
    provider: 's3', bucket: v.bucket, region, path: v.path, endpoint, temporary: v.temporary !== false,
    credentials: {
      accessKeyId: str(c.accessKeyId, 'store.credentials.accessKeyId', 128),
      secretAccessKey: str(c.secretAccessKey, 'store.credentials.secretAccessKey', 256),
      sessionToken: c.sessionToken === undefined ? undefined : str(c.sessionToken, 'store.credentials.sessionToken', 4096),
    },
  };
}

export function parseOptions(raw: unknown): ImageOptions {
  if (raw === undefined || raw === null) raw = {};
  if (!isPlainObject(raw)) bad('options', 'must be a JSON object');
  checkKeys(raw, OPTION_NAMES, '');
  if (raw.scale !== undefined && raw.resize !== undefined) bad('scale', 'cannot be combined with resize');
  const filter = optObject(raw.filter, 'filter', ['grayscale', 'sepia', 'negate', 'blur', 'sharpen']);
  // filter.blur/sharpen are the modelled API's names for Sluice's top-level blur/sharpen.
  if (filter?.blur !== undefined && raw.blur !== undefined) bad('filter.blur', 'cannot be combined with blur');
  if (filter?.sharpen !== undefined && raw.sharpen !== undefined) bad('filter.sharpen', 'cannot be combined with sharpen');
  const grayscale = optBool(filter?.grayscale, 'filter.grayscale', false);
  const sepia = optBool(filter?.sepia, 'filter.sepia', false);
  if (grayscale && sepia) bad('filter.sepia', 'cannot be combined with filter.grayscale');
  const adjust = parseAdjust(raw.adjust);
  // libvips keeps one sharpening step per pipeline.
  if (adjust?.unsharp !== undefined && (raw.sharpen !== undefined || filter?.sharpen !== undefined)) bad('adjust.unsharp', 'cannot be combined with sharpen');
  const resize = parseResize(raw.resize);
  const crop = parseCrop(raw.crop);
  // A crop already decides what is kept; face gravity would look for faces outside a crop rectangle.
  if (resize?.gravity !== undefined && crop !== undefined) bad('resize.gravity', 'cannot be combined with crop');
  const lossless = optBool(raw.lossless, 'lossless', false);
  const quality = optInt(raw.quality, 'quality', 1, 100);
  if (lossless && quality !== undefined) bad('quality', 'cannot be combined with lossless');
  return {
    resize,
    crop,
    format: optEnum(raw.format, 'format', FORMATS),
    quality,
    lossless,
    optimize: optEnum(raw.optimize, 'optimize', OPTIMIZE),
    rotate: parseRotate(raw.rotate),
    flip: optBool(raw.flip, 'flip', false),
    flop: optBool(raw.flop, 'flop', false),
    blur: filter?.blur !== undefined ? parseBlur(filter.blur, 'filter.blur') : parseBlur(raw.blur, 'blur'),
    sharpen: filter?.sharpen !== undefined ? parseSharpen(filter.sharpen, 'filter.sharpen') : parseSharpen(raw.sharpen, 'sharpen'),
    strip: optBool(raw.strip, 'strip', true),
    webhook: parseWebhook(raw.webhook),
    scale: parseScale(raw.scale),
    adjust,
    filter: { grayscale, sepia, negate: optBool(filter?.negate, 'filter.negate', false) },
    enhance: parseAuto(raw.auto),
    border: parseBorder(raw.border),
    padding: parsePadding(raw.padding),
    mask: parseMask(raw.mask),
    watermark: parseWatermark(raw.watermark),
    output: parseOutput(raw.output),
    store: parseStore(raw.store),
  };
}

/** Options from the X-Options header (or a multipart `options` field): JSON text. */
export function parseOptionsHeader(text: string | undefined): ImageOptions {
  if (text === undefined || text.trim() === '') return parseOptions({});
  if (text.length > MAX_OPTIONS_TEXT) bad('options', `must be at most ${MAX_OPTIONS_TEXT} characters`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    bad('options', 'must be valid JSON');
  }
  return parseOptions(raw);
}
