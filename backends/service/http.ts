import type { IncomingMessage, ServerResponse } from 'node:http';
import { watchBodyRate, type BodyRate } from '../../common/body-rate.js';
import { HttpError } from '../../common/errors.js';

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

/**
 * True when the client prefers the image bytes over the JSON description: some
 * `image/...` range is acceptable and ranked at least as high as application/json.
 * A bare `*\/*` (what most clients send) keeps JSON.
 */
export function wantsImage(accept: string | undefined): boolean {
  if (accept === undefined) return false;
  let image = 0;
  let json = 0;
  for (const part of accept.split(',')) {
    const [range, ...params] = part.trim().toLowerCase().split(';');
    let q = 1;
    for (const p of params) {
      const m = /^\s*q=([0-9.]+)\s*$/.exec(p);
      if (m) q = Number(m[1]);
    }
    if (!(q > 0)) continue;
    const r = range!.trim();
    if (r.startsWith('image/')) image = Math.max(image, q);
    else if (r === 'application/json' || r === 'application/*') json = Math.max(json, q);
  }
  return image > 0 && image >= json;
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
  res.end(text);
}
