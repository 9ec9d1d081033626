// Validation of client options: the only place untrusted option JSON is looked at.
// The schema (options-schema.ts) checks shapes, ranges and unknown fields and fills in
// defaults; the semantic pass here checks what a schema cannot say (combinations, URLs,
// ratios) and turns the client's JSON into the ImageOptions processing trusts. Every
// refusal lists every problem found, each naming the field path the client has to fix.

import { schemaChecker } from '../../common/schema-check.js';
import { problemLine, type Problem } from '../../common/schema-errors.js';
import { COMPASS, FetchRequest, ImageOptions as ImageOptionsSchema, WATERMARK_ID_PATTERN, type ImageOptionsInput } from './options-schema.js';
import { ImageError, type Colour, type CropMode, type CropOptions, type Gravity, type ImageOptions, type WebhookTarget } from './types.js';

export const WATERMARK_ID_RE = new RegExp(WATERMARK_ID_PATTERN);
/** Sharpen sigma used for `sharpen: true`: visible on downscaled photos without halos. */
export const DEFAULT_SHARPEN_SIGMA = 1;
/** Options are tiny; a huge header or field is an attack or a mistake. */
const MAX_OPTIONS_TEXT = 16 * 1024;

const checkOptions = schemaChecker(ImageOptionsSchema, { root: 'options' });
const checkFetch = schemaChecker(FetchRequest, { root: 'body' });

function refuse(problems: readonly Problem[]): never {
  throw new ImageError(400, 'bad_request', problems.map(problemLine).join('; '), problems[0]!.field);
}

/**
 * A copy without the null-valued properties: a null option is the same as one left
 * out, as it always was. The copy is also what the schema's defaults are written into.
 */
function withoutNulls(v: unknown): unknown {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (x !== null) out[k] = withoutNulls(x);
  return out;
}

/** "#rgb", "#rrggbb", "#rrggbbaa" or "transparent" (the schema has checked the form). */
function colour(v: string | undefined): Colour | undefined {
  if (v === undefined) return undefined;
  if (v === 'transparent') return { r: 0, g: 0, b: 0, alpha: 0 };
  const h = v.slice(1);
  const hex = h.length === 3 ? [...h].map((c) => c + c).join('') : h;
  const byte = (i: number): number => parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return { r: byte(0), g: byte(1), b: byte(2), alpha: hex.length === 8 ? Math.round((byte(3) / 255) * 1000) / 1000 : 1 };
}

function isHttpUrl(v: string): boolean {
  try {
    const u = new URL(v);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

function gravityMode(g: Gravity): CropMode {
  if (g === 'face' || g === 'faces') return 'face';
  if (g === 'attention' || g === 'entropy') return g;
  return 'center';
}

/** width / height of `crop.aspect`, or a problem. */
function aspectOf(v: number | string | undefined, bad: (message: string) => void): number | undefined {
  if (typeof v !== 'string') return v;
  const [w, h] = v.trim().split(':').map(Number) as [number, number];
  // 1:100 either way is already a banner; beyond that it is a typo.
  if (!(w > 0 && h > 0) || w / h < 0.01 || w / h > 100) { bad('must be a ratio from 0.01 to 100, both sides positive'); return undefined; }
  return w / h;
}

function crop(c: ImageOptionsInput['crop'], bad: (field: string, message: string) => void): CropOptions | undefined {
  if (c === undefined) return undefined;
  if (typeof c === 'string') return { mode: c, rect: undefined, aspect: undefined, gravity: undefined };
  const { gravity } = c;
  if (gravity !== undefined && c.mode !== undefined) bad('crop.gravity', 'cannot be combined with crop.mode');
  const mode = gravity !== undefined ? gravityMode(gravity) : c.mode;
  const sides = ['x', 'y', 'width', 'height'] as const;
  let rect: CropOptions['rect'];
  if (sides.some((k) => c[k] !== undefined)) {
    const missing = sides.find((k) => c[k] === undefined);
    if (missing !== undefined) bad(`crop.${missing}`, 'an explicit rectangle needs x, y, width and height');
    else rect = { x: c.x!, y: c.y!, width: c.width!, height: c.height! };
    if (mode !== undefined) bad(gravity !== undefined ? 'crop.gravity' : 'crop.mode', 'cannot be combined with an explicit rectangle');
  }
  const aspect = aspectOf(c.aspect, (m) => bad('crop.aspect', m));
  if (rect !== undefined && c.aspect !== undefined) bad('crop.aspect', 'cannot be combined with an explicit rectangle');
  if (rect === undefined && mode === undefined && c.aspect === undefined && !sides.some((k) => c[k] !== undefined)) bad('crop', 'needs mode, aspect or x/y/width/height');
  return { mode: rect ? undefined : (mode ?? (aspect !== undefined ? 'center' : undefined)), rect, aspect, gravity };
}

function webhook(w: ImageOptionsInput['webhook'], at: string, bad: (field: string, message: string) => void): WebhookTarget | undefined {
  if (w === undefined) return undefined;
  const [url, field, delaySeconds] = typeof w === 'string' ? [w, at, 0] : [w.url, `${at}.url`, w.delay ?? 0];
  // SSRF is judged at connect time by the delivery code; only the shape is checked here.
  if (!isHttpUrl(url)) bad(field, 'must be an http(s) URL');
  return { url, delaySeconds };
}

function sigma(v: number | boolean | undefined, whenTrue: number | undefined): number | undefined {
  return v === undefined || v === false ? undefined : v === true ? whenTrue : v;
}

/**
 * The semantic pass over options the schema accepted (defaults filled in): the
 * combinations it cannot express, then the trusted shape. `at` prefixes field names
 * (`options.` inside a fetch body).
 */
function semantic(o: ImageOptionsInput, at: string): { options: ImageOptions; problems: Problem[] } {
  const problems: Problem[] = [];
  const bad = (field: string, message: string): void => { problems.push({ field: at + field, message }); };
  const { resize, filter, adjust } = o;
  if (o.scale !== undefined && resize !== undefined) bad('scale', 'cannot be combined with resize');
  if (resize !== undefined) {
    if (resize.width === undefined && resize.height === undefined) bad('resize', 'needs width or height');
    if (resize.gravity !== undefined) {
      // Only these fits leave a choice of where the image goes.
      if (resize.fit !== 'cover' && resize.fit !== 'contain') bad('resize.gravity', 'needs fit cover or contain');
      else if (resize.width === undefined || resize.height === undefined) bad('resize.gravity', 'needs resize width and height');
      else if (resize.fit === 'contain' && !(COMPASS as readonly string[]).includes(resize.gravity)) bad('resize.gravity', `with fit contain must be one of ${COMPASS.join(', ')}`);
      // A crop already decides what is kept; face gravity would look for faces outside a crop rectangle.
      if (o.crop !== undefined) bad('resize.gravity', 'cannot be combined with crop');
    }
  }
  // filter.blur/sharpen are the modelled API's names for Sluice's top-level blur/sharpen.
  if (filter?.blur !== undefined && o.blur !== undefined) bad('filter.blur', 'cannot be combined with blur');
  if (filter?.sharpen !== undefined && o.sharpen !== undefined) bad('filter.sharpen', 'cannot be combined with sharpen');
  if (filter?.grayscale === true && filter.sepia === true) bad('filter.sepia', 'cannot be combined with filter.grayscale');
  // libvips keeps one sharpening step per pipeline.
  if (adjust?.unsharp !== undefined && (o.sharpen !== undefined || filter?.sharpen !== undefined)) bad('adjust.unsharp', 'cannot be combined with sharpen');
  if (o.lossless === true && o.quality !== undefined) bad('quality', 'cannot be combined with lossless');
  const p = o.padding;
  if (p !== undefined && p.top! + p.right! + p.bottom! + p.left! === 0) bad('padding', 'needs a positive top, right, bottom or left');
  const s = o.store;
  let endpoint: string | undefined;
  if (s?.endpoint !== undefined) {
    const u = isHttpUrl(s.endpoint) ? new URL(s.endpoint) : undefined;
    if (u === undefined || u.username !== '' || u.password !== '' || u.pathname !== '/' || u.search !== '') bad('store.endpoint', 'must be an http(s) origin like https://s3.example.com');
    else endpoint = u.origin;
  }
  const rotate = o.rotate === undefined ? 0 : ((o.rotate % 360) + 360) % 360;
  // Fields with a schema default are always present here: the checker filled them in.
  const options: ImageOptions = {
    resize: resize === undefined ? undefined : { width: resize.width, height: resize.height, fit: resize.fit!, upscale: resize.upscale!, gravity: resize.gravity },
    crop: crop(o.crop, bad),
    format: o.format,
    quality: o.quality,
    lossless: o.lossless!,
    optimize: o.optimize,
    rotate: rotate === 0 ? undefined : rotate,
    flip: o.flip!,
    flop: o.flop!,
    blur: sigma(filter?.blur ?? o.blur, undefined),
    sharpen: sigma(filter?.sharpen ?? o.sharpen, DEFAULT_SHARPEN_SIGMA),
    strip: o.strip!,
    webhook: webhook(o.webhook, 'webhook', bad),
    scale: o.scale?.percent,
    adjust: adjust === undefined ? undefined : {
      brightness: adjust.brightness, contrast: adjust.contrast, saturation: adjust.saturation, gamma: adjust.gamma, hue: adjust.hue, unsharp: adjust.unsharp,
    },
    filter: { grayscale: filter?.grayscale ?? false, sepia: filter?.sepia ?? false, negate: filter?.negate ?? false },
    enhance: o.auto?.enhance ?? false,
    border: o.border === undefined ? undefined : { size: o.border.size, color: colour(o.border.color) ?? { r: 0, g: 0, b: 0, alpha: 1 } },
    padding: p === undefined ? undefined : { top: p.top!, right: p.right!, bottom: p.bottom!, left: p.left!, color: colour(p.color) },
    mask: o.mask?.shape,
    watermark: o.watermark === undefined ? undefined : {
      id: o.watermark.id, gravity: o.watermark.gravity!, padding: o.watermark.padding!, opacity: o.watermark.opacity!, scale: o.watermark.scale!,
    },
    output: { encoding: o.output?.encoding, chromaSubsampling: o.output?.chroma_subsampling },
    store: s === undefined ? undefined : {
      provider: s.provider, bucket: s.bucket, region: s.region!, path: s.path, endpoint, temporary: s.temporary!,
      credentials: { accessKeyId: s.credentials.accessKeyId, secretAccessKey: s.credentials.secretAccessKey, sessionToken: s.credentials.sessionToken },
    },
  };
  return { options, problems };
}

/** Options as JSON (already parsed): the typed shape, or a 400 ImageError naming every bad field. */
export function parseOptions(raw: unknown): ImageOptions {
  const { value, problems } = checkOptions(raw === undefined ? {} : withoutNulls(raw) ?? {});
  if (problems.length > 0) refuse(problems);
  const out = semantic(value, '');
  if (out.problems.length > 0) refuse(out.problems);
  return out.options;
}

/** Options from the X-Options header (or a multipart `options` field): JSON text. */
export function parseOptionsHeader(text: string | undefined): ImageOptions {
  if (text === undefined || text.trim() === '') return parseOptions({});
  if (text.length > MAX_OPTIONS_TEXT) refuse([{ field: 'options', message: `must be at most ${MAX_OPTIONS_TEXT} characters` }]);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    refuse([{ field: 'options', message: 'must be valid JSON' }]);
  }
  return parseOptions(raw);
}

/** The JSON body of `POST /v1/images/fetch` (already parsed): the URL to fetch and the options; problems in the options name `options.<field>`. */
export function parseFetchRequest(raw: unknown): { readonly url: string; readonly options: ImageOptions } {
  const { value, problems } = checkFetch(withoutNulls(raw));
  if (problems.length > 0) refuse(problems);
  const out = semantic(value.options ?? checkOptions({}).value, 'options.');
  if (out.problems.length > 0) refuse(out.problems);
  return { url: value.url, options: out.options };
}
