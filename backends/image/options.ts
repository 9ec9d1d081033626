// Validation of client options: the only place untrusted option JSON is looked at.
// Everything downstream trusts ImageOptions, so every rule lives here and every
// refusal names the field path the client has to fix.

import {
  ImageError,
  type CropMode,
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
const FORMATS: readonly (OutputFormat | 'auto')[] = ['jpeg', 'png', 'webp', 'avif', 'gif', 'auto'];
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
  checkKeys(v, ['width', 'height', 'fit', 'upscale'], 'resize');
  const width = optInt(v.width, 'resize.width', 1, MAX_DIMENSION);
  const height = optInt(v.height, 'resize.height', 1, MAX_DIMENSION);
  if (width === undefined && height === undefined) bad('resize', 'needs width or height');
  return {
    width,
    height,
    fit: optEnum(v.fit, 'resize.fit', FITS) ?? 'cover',
    upscale: optBool(v.upscale, 'resize.upscale', false),
  };
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
  checkKeys(v, ['mode', 'x', 'y', 'width', 'height', 'aspect'], 'crop');
  const mode = optEnum(v.mode, 'crop.mode', CROP_MODES);
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
    if (mode !== undefined) bad('crop.mode', 'cannot be combined with an explicit rectangle');
  }
  const aspect = parseAspect(v.aspect);
  if (rect && aspect !== undefined) bad('crop.aspect', 'cannot be combined with an explicit rectangle');
  if (!rect && mode === undefined && aspect === undefined) bad('crop', 'needs mode, aspect or x/y/width/height');
  return { mode: rect ? undefined : (mode ?? (aspect !== undefined ? 'center' : undefined)), rect, aspect };
}

function parseSharpen(v: unknown): number | undefined {
  if (v === undefined || v === null || v === false) return undefined;
  if (v === true) return DEFAULT_SHARPEN_SIGMA;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0.000001 || v > 10) {
    bad('sharpen', 'must be true or a sigma from 0.000001 to 10');
  }
  return v;
}

function parseBlur(v: unknown): number | undefined {
  if (v === undefined || v === null || v === false) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0.3 || v > 1000) bad('blur', 'must be a sigma from 0.3 to 1000');
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
  checkKeys(v, ['provider', 'bucket', 'region', 'path', 'credentials', 'endpoint'], 'store');
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
    provider: 's3', bucket: v.bucket, region, path: v.path, endpoint,
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
  checkKeys(
    raw,
    ['resize', 'crop', 'format', 'quality', 'lossless', 'optimize', 'rotate', 'flip', 'flop', 'blur', 'sharpen', 'strip', 'webhook', 'store'],
    '',
  );
  const lossless = optBool(raw.lossless, 'lossless', false);
  const quality = optInt(raw.quality, 'quality', 1, 100);
  if (lossless && quality !== undefined) bad('quality', 'cannot be combined with lossless');
  return {
    resize: parseResize(raw.resize),
    crop: parseCrop(raw.crop),
    format: optEnum(raw.format, 'format', FORMATS),
    quality,
    lossless,
    optimize: optEnum(raw.optimize, 'optimize', OPTIMIZE),
    rotate: parseRotate(raw.rotate),
    flip: optBool(raw.flip, 'flip', false),
    flop: optBool(raw.flop, 'flop', false),
    blur: parseBlur(raw.blur),
    sharpen: parseSharpen(raw.sharpen),
    strip: optBool(raw.strip, 'strip', true),
    webhook: parseWebhook(raw.webhook),
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
