import { Type, type SchemaOptions, type Static, type TSchema } from '@sinclair/typebox';
import { StringEnum } from '../../common/schema-types.js';

// The image options as a client writes them (the `X-Options` header, the multipart
// `options` field, the `options` of a fetch body): the one definition the validator,
// the static types and the OpenAPI document (backends/service/openapi.json) come from.
// What JSON Schema cannot say (combinations, URLs, ratios) is options.ts's semantic pass.

const Opt = <T extends TSchema>(s: T) => Type.Optional(s);

/** Border and padding are frames, not canvases: a few thousand pixels is already absurd. */
const MAX_FRAME = 2000;
/** Upper bound on any pixel count a client can name; the real caps are ImageLimits. */
const MAX_DIMENSION = 100_000;
// A day: a delivery held back longer would announce a result that expired long ago.
const MAX_WEBHOOK_DELAY_S = 86_400;
const MAX_URL = 2048;

export const FORMATS = ['jpeg', 'png', 'webp', 'avif', 'gif', 'jp2'] as const;
export const FITS = ['cover', 'contain', 'fill', 'inside', 'outside'] as const;
export const CROP_MODES = ['center', 'attention', 'entropy', 'face'] as const;
export const OPTIMIZE_LEVELS = ['lossless', 'low', 'medium', 'high'] as const;
export const COMPASS = ['center', 'north', 'northeast', 'east', 'southeast', 'south', 'southwest', 'west', 'northwest'] as const;
export const GRAVITIES = [...COMPASS, 'face', 'faces', 'attention', 'entropy'] as const;

export const Gravity = StringEnum(GRAVITIES, {
  'x-component': 'Gravity',
  description: 'Compass points place the kept or placed part; `face`: the most prominent detected face (largest area × score), `faces`: all detected faces; '
    + 'both fall back to `center` when none is found. `attention`/`entropy`: libvips\' saliency strategies.',
});

export const WATERMARK_ID_PATTERN = '^[A-Za-z0-9_-]{1,64}$';
/** S3's bucket naming rules (3-63 of a-z 0-9 . -, alphanumeric at both ends). */
const BUCKET_PATTERN = '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$';
const BUCKET_RE = new RegExp(BUCKET_PATTERN);

/** A store bucket and --results-s3-bucket follow S3's naming rules. */
export function isBucketName(name: string): boolean {
  return BUCKET_RE.test(name);
}

export const Colour = Type.String({
  pattern: '^(#([0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})|transparent)$',
  errorMessage: 'must be "#rgb", "#rrggbb", "#rrggbbaa" or "transparent"',
  'x-component': 'Colour',
  description: '`#rgb`, `#rrggbb`, `#rrggbbaa` or `transparent`.',
});

const int = (minimum: number, maximum: number, o: SchemaOptions = {}) => Type.Integer({ minimum, maximum, ...o });
const num = (minimum: number, maximum: number, o: SchemaOptions = {}) => Type.Number({ minimum, maximum, ...o });
const bool = (dflt: boolean, o: SchemaOptions = {}) => Type.Boolean({ default: dflt, ...o });
const obj = <P extends Record<string, TSchema>>(props: P, o: SchemaOptions = {}) => Type.Object(props, { additionalProperties: false, ...o });

const Blur = Type.Union([num(0.3, 1000), Type.Literal(false)], { errorMessage: 'must be a sigma from 0.3 to 1000', description: 'Gaussian sigma; false: none.' });
const Sharpen = Type.Union([Type.Boolean(), num(0.000001, 10)], { errorMessage: 'must be true or a sigma from 0.000001 to 10', description: 'Sharpen sigma; true: 1 (mild), false: none.' });
const HttpUrl = (o: SchemaOptions = {}) => Type.String({ format: 'uri', maxLength: MAX_URL, errorMessage: 'must be an http(s) URL', ...o });

const Resize = obj({
  width: Opt(int(1, MAX_DIMENSION)),
  height: Opt(int(1, MAX_DIMENSION)),
  fit: Opt(StringEnum(FITS, { default: 'cover' })),
  upscale: Opt(bool(false)),
  gravity: Opt(Type.Unsafe<Static<typeof Gravity>>({ ...Gravity,
    description: 'Needs width and height and fit cover (any gravity) or contain (compass points only); not with crop. `face`/`faces` cut a face crop to width × height.' })),
}, { description: 'Needs width or height. Never enlarges unless upscale is true.' });

const CropObject = obj({
  mode: Opt(StringEnum(CROP_MODES)),
  aspect: Opt(Type.Union([num(0.01, 100), Type.String({ pattern: '^\\s*\\d{1,5}(\\.\\d{1,4})?:\\d{1,5}(\\.\\d{1,4})?\\s*$' })], {
    errorMessage: 'must be a ratio from 0.01 to 100: a number, or "W:H" like "16:9"',
  })),
  x: Opt(int(0, MAX_DIMENSION)),
  y: Opt(int(0, MAX_DIMENSION)),
  width: Opt(int(1, MAX_DIMENSION)),
  height: Opt(int(1, MAX_DIMENSION)),
  gravity: Opt(Type.Unsafe<Static<typeof Gravity>>({ ...Gravity, description: 'Instead of mode: where a crop to `aspect` (or to resize width × height) is placed.' })),
}, { description: 'A strategy (mode, optionally to an aspect ratio) or an explicit rectangle x/y/width/height. `face` falls back to `attention` when no face is found.' });
const Crop = Type.Union([StringEnum(CROP_MODES), CropObject], { errorMessage: `must be one of ${CROP_MODES.join(', ')}, or an object` });

const Webhook = Type.Union([
  HttpUrl(),
  obj({
    url: HttpUrl(),
    // No schema default: ajv fills in none inside a union.
    delay: Opt(int(0, MAX_WEBHOOK_DELAY_S, { description: 'Seconds to hold the delivery back after the job finished; 0 when left out.' })),
  }),
], { errorMessage: 'must be an http(s) URL or {url, delay}', description: 'Answer 202 at once and POST the signed result here later.' });

const Adjust = obj({
  brightness: Opt(num(0, 10, { description: 'Multiplier, 1 = unchanged.' })),
  contrast: Opt(num(0, 10, { description: 'Multiplier around mid-grey: 1 = unchanged, 0 = flat grey.' })),
  saturation: Opt(num(0, 10, { description: 'Multiplier, 0 = grey.' })),
  gamma: Opt(num(1, 3, { description: 'v → v^(1/gamma): above 1 brightens mid-tones.' })),
  hue: Opt(int(-360, 360, { description: 'Hue rotation in degrees.' })),
  unsharp: Opt(num(0.3, 10, { description: 'Unsharp-mask sigma. Not with sharpen.' })),
});

const Filter = obj({
  grayscale: Opt(bool(false)),
  sepia: Opt(bool(false, { description: 'Not with grayscale.' })),
  negate: Opt(bool(false)),
  blur: Opt(Type.Unsafe<Static<typeof Blur>>({ ...Blur, description: 'Gaussian sigma. Same as the top-level blur (give one of them).' })),
  sharpen: Opt(Type.Unsafe<Static<typeof Sharpen>>({ ...Sharpen, description: 'Sharpen sigma, true = 1. Same as the top-level sharpen (give one of them).' })),
});

const side = () => Opt(int(0, MAX_FRAME, { default: 0 }));

const Store = obj({
  provider: StringEnum(['s3'], { errorMessage: 'must be "s3"' }),
  bucket: Type.String({ pattern: BUCKET_PATTERN, errorMessage: 'must be an S3 bucket name (3-63 of a-z 0-9 . -)' }),
  region: Opt(Type.String({ pattern: '^[a-z]{2}(-[a-z0-9]+){1,4}$', default: 'us-east-1', errorMessage: 'must be a region name like eu-west-1' })),
  path: Type.String({
    pattern: '^[^/\\x00-\\x1f\\x7f][^\\x00-\\x1f\\x7f]{0,1023}$',
    errorMessage: 'must be an object key: 1-1024 characters, no leading /, no control characters',
    description: 'The object key (no leading /).',
  }),
  endpoint: Opt(Type.String({ format: 'uri', errorMessage: 'must be an http(s) origin like https://s3.example.com', description: 'An S3-compatible origin; omit for AWS. Reached under the SSRF guard.' })),
  temporary: Opt(bool(true, {
    errorMessage: 'must be true (also keep the one-hour result) or false (the bucket only)',
    description: 'Also keep the one-hour temporary result (output.url). false: the bucket holds the only copy, and the answer has no url.',
  })),
  credentials: obj({
    accessKeyId: Type.String({ pattern: '^[\\x21-\\x7e]{1,128}$', errorMessage: 'must be 1-128 printable characters' }),
    secretAccessKey: Type.String({ pattern: '^[\\x21-\\x7e]{1,256}$', errorMessage: 'must be 1-256 printable characters' }),
    sessionToken: Opt(Type.String({ pattern: '^[\\x21-\\x7e]{1,4096}$', errorMessage: 'must be 1-4096 printable characters' })),
  }, { errorMessage: 'must be an object {accessKeyId, secretAccessKey, sessionToken?}' }),
}, {
  errorMessage: 'must be an object {provider, bucket, region, path, credentials}',
  description: 'Also write the output into the customer\'s own bucket; the credentials are used for this one PUT and never logged, stored or echoed.',
});

export const ImageOptions = obj({
  resize: Opt(Resize),
  scale: Opt(obj({ percent: num(1, 1000) }, { description: 'Both sides as a percentage of the input (after crop); above 100 enlarges. Not with resize.' })),
  crop: Opt(Crop),
  format: Opt(StringEnum([...FORMATS, 'auto'], {
    description: '`auto`: the smallest, at the level\'s target score (what the level\'s WebP scores), of the formats the request\'s Accept takes: WebP, AVIF and (without alpha) JPEG, or lossless WebP and PNG for a palette input or `lossless: true`; an animation gives animated WebP. Without `format`, WebP (AVIF for AVIF input). `jp2` (JPEG 2000) only where this libvips has OpenJPEG; otherwise 400 naming `format` (the prebuilt sharp binaries do not).',
  })),
  quality: Opt(int(1, 100)),
  lossless: Opt(bool(false)),
  optimize: Opt(StringEnum(OPTIMIZE_LEVELS)),
  rotate: Opt(Type.Integer({ multipleOf: 90, minimum: -3600, maximum: 3600, errorMessage: 'must be a multiple of 90', description: 'Degrees, after EXIF auto-orientation.' })),
  flip: Opt(bool(false)),
  flop: Opt(bool(false)),
  blur: Opt(Type.Unsafe<Static<typeof Blur>>({ ...Blur, description: 'Gaussian sigma. Same as filter.blur (give one of them).' })),
  sharpen: Opt(Type.Unsafe<Static<typeof Sharpen>>({ ...Sharpen, description: 'Sharpen sigma, true = 1. Same as filter.sharpen (give one of them).' })),
  strip: Opt(bool(true, { description: 'Strip metadata (EXIF orientation is applied first).' })),
  webhook: Opt(Webhook),
  store: Opt(Store),
  adjust: Opt(Adjust),
  filter: Opt(Filter),
  auto: Opt(obj({ enhance: Opt(bool(false, { description: 'Normalise: stretch levels to the full range.' })) })),
  border: Opt(obj({ size: int(1, MAX_FRAME), color: Opt(Type.Unsafe<string>({ ...Colour, description: 'Default #000000.' })) }, {
    description: 'Adds 2 × size to each dimension, outside any padding.',
  })),
  padding: Opt(obj({
    top: side(), right: side(), bottom: side(), left: side(),
    color: Opt(Type.Unsafe<string>({ ...Colour, description: 'Default: transparent where the output format has alpha, else white.' })),
  }, { description: 'At least one side positive.' })),
  mask: Opt(obj({ shape: StringEnum(['ellipse']) }, { description: 'The ellipse inscribed in the image; outside it is transparent (white in JPEG).' })),
  watermark: Opt(obj({
    id: Type.String({ pattern: WATERMARK_ID_PATTERN, errorMessage: 'must be 1 to 64 letters, digits, _ or -', description: 'A watermark uploaded by the same customer with PUT /v1/watermarks/{id}.' }),
    gravity: Opt(StringEnum(COMPASS, { default: 'southeast' })),
    padding: Opt(int(0, MAX_FRAME, { default: 0, description: 'Pixels from the edges it is placed against.' })),
    opacity: Opt(num(0, 1, { default: 1 })),
    // Below 1 % of the width a watermark is a speck.
    scale: Opt(num(0.01, 1, { default: 0.25, description: 'Watermark width as a fraction of the output width (kept inside the image).' })),
  }, { description: 'Composited after resize and colour, before mask, padding and border. 400 naming watermark.id when the caller has no watermark by that id.' })),
  output: Opt(obj({
    encoding: Opt(StringEnum(['baseline', 'progressive'], { description: 'JPEG scans (and PNG interlacing for progressive). Other formats: 400.' })),
    chroma_subsampling: Opt(StringEnum(['4:4:4', '4:2:0'], { description: 'JPEG, AVIF and JPEG 2000. Other formats: 400.' })),
  })),
}, {
  'x-component': 'ImageOptions',
  errorMessage: 'must be a JSON object',
  description: 'Order: auto-orient, flip/flop, rotate, crop, resize or scale, adjust/filter/auto, blur/sharpen, then watermark, mask, padding, border, then encode. '
    + 'watermark, mask, padding and border refuse animated output and strip: false. A null value is the same as leaving the option out.',
});

/** The options as the client sent them, after the schema's defaults were filled in. */
export type ImageOptionsInput = Static<typeof ImageOptions>;

/** `POST /v1/images/fetch`: the image is fetched from `url`, then processed as an upload would be. */
export const FetchRequest = obj({
  url: Type.String({ minLength: 1, maxLength: 4096, format: 'uri', errorMessage: 'must be an http(s) URL string' }),
  options: Opt(ImageOptions),
}, { 'x-component': 'FetchRequest', errorMessage: 'must be a JSON object {"url","options"}' });
