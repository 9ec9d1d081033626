import type { IncomingMessage, ServerResponse } from 'node:http';
import { watchBodyRate, type BodyRate } from '../../common/body-rate.js';
import { HttpError } from '../../common/errors.js';
import type { OutputFormat } from '../image/types.js';

/** The client went away before we answered: nothing to send, just free what it held. */
export class ClientGone extends Error {}

/** The failure as the client sees it (ImageError is one), or undefined for one of ours. */
export function asHttpError(err: unknown): HttpError | undefined {
  return err instanceof HttpError ? err : undefined;
}

/**
 * Reads the whole body, refusing as soon as it is over `max` bytes: a declared
 * Content-Length over the limit is refused before a byte is read, and an undeclared
 * (chunked) one is cut off at the first chunk past the limit. A body arriving slower
 * than `rate` is cut with 408.
 *
 * A declared body is copied into one buffer of its size as it arrives, taken when its
 * first bytes do (a request that declares and sends nothing holds nothing): no list of
 * the socket's 64 KB reads held until the end, and no concatenation into a second copy.
 * That copy was half of the memory outside the JavaScript heap each upload churned
 * through, and that memory is what starts V8's full collections in an image backend
 * (load-tests/PROFILE.md). Admission comes before the body (server.ts), so the buffers
 * live at once are bounded by the pool, as the chunks were.
 */
export function readBody(req: IncomingMessage, res: ServerResponse, max: number, rate: BodyRate): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > max) {
    return Promise.reject(tooLarge(max));
  }
  // Node's parser holds the body to its Content-Length, so a declared one never outgrows its buffer.
  const size = declared === undefined || req.headers['transfer-encoding'] !== undefined ? -1 : Number(declared);
  // The server handles `Expect: 100-continue` itself (checkContinue): only a request
  // that was admitted and is within the limits is invited to send its body.
  if (/100-continue/i.test(req.headers.expect ?? '') && !res.headersSent) res.writeContinue();
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let whole: Buffer | undefined;
    let total = 0;
    let done = false;
    const stopWatch = watchBodyRate(req, rate, (got, ms) => {
      if (done) return;
      done = true;
      cleanup();
      chunks.length = 0;
      whole = undefined;
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
        whole = undefined;
        // Stop reading: the rest of the body is never buffered; the answer closes the connection.
        req.pause();
        reject(tooLarge(max));
        return;
      }
      if (size < 0) {
        chunks.push(chunk);
        return;
      }
      whole ??= Buffer.allocUnsafe(size);
      chunk.copy(whole, total - chunk.length);
    };
    const onEnd = (): void => {
      done = true;
      cleanup();
      if (size >= 0) resolve(whole === undefined ? Buffer.alloc(0) : whole.subarray(0, total));
      else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total));
    };
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
