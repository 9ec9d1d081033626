import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { watchBodyRate, type BodyRate } from '../../gateway/http/body-rate.js';
import { ImageError, type OutputFormat } from '../image/types.js';

/** A failure the HTTP layer answers itself (ImageError covers the image ones). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field: string | undefined = undefined,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

/** The client went away before we answered: nothing to send, just free what it held. */
export class ClientGone extends Error {}

const SANE_ID = /^[A-Za-z0-9._:@\-]{1,128}$/;

/** The client's X-Request-Id when it is a sane token (the gateway always sends one), else a new one. */
export function requestId(header: string | string[] | undefined): string {
  return typeof header === 'string' && SANE_ID.test(header) ? header : randomUUID();
}

export function asHttpError(err: unknown): HttpError | undefined {
  if (err instanceof HttpError) return err;
  if (err instanceof ImageError) return new HttpError(err.status, err.code, err.message, err.field);
  return undefined;
}

/** The DESIGN.md error body; `field` names the bad option or form field when there is one. */
export function errorBody(e: HttpError, rid: string): string {
  const error: Record<string, string> = { code: e.code, message: e.message, request_id: rid };
  if (e.field !== undefined) error.field = e.field;
  return JSON.stringify({ error });
}

/**
 * Reads the whole body, refusing as soon as it is over `max` bytes: a declared
 * Content-Length over the limit is refused before a byte is read, and an undeclared
 * (chunked) one is cut off at the first chunk past the limit. A body arriving slower
 * than `rate` is cut with 408.
 */
export function readBody(req: IncomingMessage, res: ServerResponse, max: number, rate: BodyRate): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > max) {
    return Promise.reject(tooLarge(max));
  }
  // The server handles `Expect: 100-continue` itself (checkContinue): only a request
  // that was admitted and is within the limits is invited to send its body.
  if (/100-continue/i.test(req.headers.expect ?? '') && !res.headersSent) res.writeContinue();
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let done = false;
    const stopWatch = watchBodyRate(req, rate, (got, ms) => {
      if (done) return;
      done = true;
      cleanup();
      chunks.length = 0;
      req.pause();
      reject(new HttpError(408, 'request_timeout', `the body arrived at ${Math.floor(got * 1000 / ms)} bytes/s, under --min-body-rate (${rate.bytesPerSecond})`));
    });
    const cleanup = (): void => {
      stopWatch();
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      total += chunk.length;
      if (total > max) {
        done = true;
        cleanup();
        chunks.length = 0;
        // Stop reading: the rest of the body is never buffered; the answer closes the connection.
        req.pause();
        reject(tooLarge(max));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => { done = true; cleanup(); resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total)); };
    const onError = (): void => { if (!done) { done = true; cleanup(); reject(new ClientGone()); } };
    const onClose = (): void => { if (!done) { done = true; cleanup(); reject(new ClientGone()); } };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

function tooLarge(max: number): HttpError {
  return new HttpError(413, 'payload_too_large', `the body is larger than ${max} bytes`);
}

/** An Accept header's media ranges, lower-cased, each with its q (1 when absent). */
function acceptRanges(accept: string): Map<string, number> {
  const ranges = new Map<string, number>();
  for (const part of accept.split(',')) {
    const [range, ...params] = part.trim().toLowerCase().split(';');
    let q = 1;
    for (const p of params) {
      const m = /^\s*q=([0-9.]+)\s*$/.exec(p);
      if (m) q = Number(m[1]);
    }
    ranges.set(range!.trim(), q);
  }
  return ranges;
}

/**
 * True when the client prefers the image bytes over the JSON description: some
 * `image/...` range is acceptable and ranked at least as high as application/json.
 * A bare `*\/*` (what most clients send) keeps JSON.
 */
export function wantsImage(accept: string | undefined): boolean {
  if (accept === undefined) return false;
  let image = 0;
  let json = 0;
  for (const [r, q] of acceptRanges(accept)) {
    if (!(q > 0)) continue;
    if (r.startsWith('image/')) image = Math.max(image, q);
    else if (r === 'application/json' || r === 'application/*') json = Math.max(json, q);
  }
  return image > 0 && image >= json;
}

const OUTPUT_MEDIA_TYPES: Readonly<Record<OutputFormat, string>> = {
  jpeg: 'image/jpeg', png: 'image/png', webp: 'image/webp', avif: 'image/avif', gif: 'image/gif', jp2: 'image/jp2',
};

/**
 * The output formats an Accept header takes, for `format: auto`; undefined when it names
 * no image type at all (absent, `application/json`): the client then takes any format.
 * The most specific range decides each format (`image/webp;q=0` beats `image/*`, which
 * beats `*\/*`), as RFC 9110 says.
 */
export function acceptedFormats(accept: string | undefined): ReadonlySet<OutputFormat> | undefined {
  if (accept === undefined) return undefined;
  const q = acceptRanges(accept);
  if (![...q.keys()].some((r) => r.startsWith('image/'))) return undefined;
  const taken = new Set<OutputFormat>();
  for (const [format, type] of Object.entries(OUTPUT_MEDIA_TYPES) as [OutputFormat, string][]) {
    const weight = q.get(type) ?? q.get('image/*') ?? q.get('*/*') ?? 0;
    if (weight > 0) taken.add(format);
  }
  return taken;
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
  res.end(text);
}
