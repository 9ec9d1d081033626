// The image and its options from a request: a raw body or a multipart form
// (POST /v1/images, /v1/detect), or a URL to fetch (POST /v1/images/fetch).
import { Response } from 'undici';
import { HttpError } from '../../common/errors.js';
import type { ImageOptions } from '../image/types.js';
import type { Exchange, ServiceContext } from './context.js';
import { readBody } from './http.js';

// Room for the multipart framing and the `options` field around a maximal image.
const MULTIPART_SLACK = 64 * 1024;
// A fetch request is a small JSON document.
const MAX_JSON_BODY = 64 * 1024;

export interface ImageRequest {
  readonly input: Buffer;
  readonly options: ImageOptions;
}

/** The image and its options, from a raw body or a multipart form. */
export async function readImageRequest(ctx: ServiceContext, { req, res }: Exchange): Promise<ImageRequest> {
  const { deps, limits, bodyRate } = ctx;
  const ct = req.headers['content-type'] ?? '';
  const header = req.headers['x-options'];
  const headerText = Array.isArray(header) ? header.join(',') : header;
  if (!/^multipart\/form-data\s*;/i.test(ct)) {
    // Validate the options before reading the body: a bad request costs no upload.
    const options = deps.parseOptionsHeader(headerText);
    const input = await readBody(req, res, limits.maxInputBytes, bodyRate);
    if (input.length === 0) throw new HttpError(400, 'bad_request', 'the body is empty; send the image as the body or as multipart field "file"', 'file');
    return { input, options };
  }
  const body = await readBody(req, res, limits.maxInputBytes + MULTIPART_SLACK, bodyRate);
  let form: Awaited<ReturnType<Response['formData']>>;
  try {
    form = await new Response(body, { headers: { 'content-type': ct } }).formData();
  } catch {
    throw new HttpError(400, 'bad_request', 'malformed multipart/form-data body', 'file');
  }
  const file = form.get('file');
  if (file === null || typeof file === 'string') {
    throw new HttpError(400, 'bad_request', 'multipart field "file" with the image is required', 'file');
  }
  if (file.size > limits.maxInputBytes) throw new HttpError(413, 'payload_too_large', `the file is larger than ${limits.maxInputBytes} bytes`, 'file');
  if (file.size === 0) throw new HttpError(400, 'bad_request', 'multipart field "file" is empty', 'file');
  const field = form.get('options');
  if (field !== null && headerText !== undefined) {
    throw new HttpError(400, 'bad_request', 'options given both as the X-Options header and the "options" field', 'options');
  }
  const optionsText = field === null ? headerText : typeof field === 'string' ? field : await field.text();
  const options = deps.parseOptionsHeader(optionsText);
  return { input: Buffer.from(await file.arrayBuffer()), options };
}

/** `{url, options}` as JSON; the URL downloaded under the SSRF guard. */
export async function readFetchRequest(ctx: ServiceContext, { req, res }: Exchange): Promise<ImageRequest> {
  const ct = req.headers['content-type'] ?? '';
  if (!/^application\/json\s*(;|$)/i.test(ct)) throw new HttpError(415, 'unsupported_media_type', 'send {"url","options"} as application/json');
  const text = (await readBody(req, res, MAX_JSON_BODY, ctx.bodyRate)).toString('utf8');
  let raw: unknown;
  try { raw = JSON.parse(text); } catch { throw new HttpError(400, 'bad_request', 'the body must be valid JSON'); }
  const { url, options } = ctx.deps.parseFetchRequest(raw);
  const fetched = await ctx.deps.fetch(url);
  if (fetched.body.length === 0) throw new HttpError(422, 'unprocessable_image', 'the URL returned an empty body', 'url');
  return { input: fetched.body, options };
}
