import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import { Response } from 'undici';
import type { CustomerStore, Detection, ImageLimits, ImageOptions, OutputFormat, ProcessResult, WatermarkLimits, WatermarkSource } from '../image/types.js';
import { ClientGone, acceptedFormats, asHttpError, readBody, wantsImage } from './http.js';
import { DEFAULT_BODY_RATE, type BodyRate } from '../../common/body-rate.js';
import { HttpError, errorBody } from '../../common/errors.js';
import { requestIdFrom as requestId } from '../../common/request-id.js';
import { BackendMetrics } from './metrics.js';
import { Pool, PoolWaitTimeout, type Reservation } from './pool.js';
import { DirectoryResultsStore, isResultId, type ResultsStore } from './results-store.js';
import type { S3ResultsConfig } from './results-s3-store.js';
import { WatermarkStore } from './watermarks-store.js';

/**
 * The image service's HTTP layer. Everything that touches pixels or the network is
 * injected (so this layer is tested with stand-ins and wired to the real modules in
 * wire.ts): the request path here is admission (pool), body, options, job, answer.
 */
export interface ServiceDeps {
  /**
   * Decode, transform, encode; throws ImageError for anything the client got wrong.
   * `accepted`: the formats the client's Accept takes (format: auto chooses among them).
   */
  readonly process: (input: Buffer, opts: ImageOptions, limits: ImageLimits, watermarks: WatermarkSource, accepted: ReadonlySet<OutputFormat> | undefined) => Promise<ProcessResult>;
  /** Faces in an encoded image; undefined when face detection is off (→ 503). */
  readonly detect: ((input: Buffer) => Promise<Detection>) | undefined;
  /** Downloads a client-chosen URL under the SSRF guard; throws ImageError. */
  readonly fetch: (url: string) => Promise<{ readonly body: Buffer }>;
  /** The JSON body of a fetch request; throws ImageError naming every bad field. */
  readonly parseFetchRequest: (raw: unknown) => { readonly url: string; readonly options: ImageOptions };
  /** Writes an output into the customer's bucket (the `store` option); throws ImageError. Undefined: `store` is a 400. */
  readonly storeOutput?: ((target: CustomerStore, data: Buffer, contentType: string) => Promise<void>) | undefined;
  readonly parseOptionsHeader: (text: string | undefined) => ImageOptions;
  /** In-process sender or queue; undefined when neither is configured (→ 400 on `webhook`). */
  readonly webhooks: { send(customer: string, url: string, payload: object, delayMs?: number): void; close(): void | Promise<void> } | undefined;
  readonly log?: Logger | undefined;
}

export interface ServiceOptions {
  readonly concurrency: number;
  readonly queue: number;
  readonly retryAfterSeconds: number;
  readonly limits: ImageLimits;
  readonly resultsDir: string | undefined;
  /** Results in S3-compatible storage instead of resultsDir. */
  readonly resultsS3?: S3ResultsConfig | undefined;
  readonly resultTtlSeconds: number;
  readonly sweepIntervalMs?: number | undefined;
  readonly openapiPath?: string | URL | undefined;
  /** Undefined: a temp directory per process (watermarks then die with it). */
  readonly watermarksDir?: string | undefined;
  readonly watermarkLimits?: WatermarkLimits | undefined;
  /** Default DEFAULT_BODY_RATE. */
  readonly bodyRate?: BodyRate | undefined;
}

export interface ImageService {
  readonly server: Server;
  readonly pool: Pool;
  readonly store: ResultsStore;
  readonly watermarks: WatermarkStore;
  readonly metrics: BackendMetrics;
  listen(port: number, host: string): Promise<number>;
  close(): Promise<void>;
}

// Room for the multipart framing and the `options` field around a maximal image.
const MULTIPART_SLACK = 64 * 1024;
// A fetch request is a small JSON document.
const MAX_JSON_BODY = 64 * 1024;
// Past the processor's own timeout, how long the HTTP layer waits before answering 504.
const TIMEOUT_GRACE_MS = 2000;

const OPENAPI_DEFAULT = new URL('../../../backends/service/openapi.json', import.meta.url);

/** `complete` is still false for a bodyless GET while its handler runs synchronously. */
function hasBody(req: IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0');
}

interface Ticket { readonly slot: Reservation; detached: boolean }

type Endpoint = 'images' | 'images_fetch' | 'detect' | 'results' | 'watermarks' | 'openapi' | 'healthz' | 'metrics' | 'other';

/**
 * Whose watermarks a request may use: the identity the gateway established. A request
 * that reached the backend directly has none and gets the shared anonymous namespace.
 */
function customerOf(req: IncomingMessage): string {
  const c = req.headers['x-sluice-customer'];
  return typeof c === 'string' ? c : '';
}

async function openResultsStore(opts: ServiceOptions, onSwept: (removed: number) => void): Promise<ResultsStore> {
  const common = { ttlSeconds: opts.resultTtlSeconds, sweepIntervalMs: opts.sweepIntervalMs, onSwept };
  if (opts.resultsS3 === undefined) return DirectoryResultsStore.open({ dir: opts.resultsDir, ...common });
  // Loaded only when used: the AWS SDK is large.
  const { S3ResultsStore } = await import('./results-s3-store.js');
  return new S3ResultsStore({ s3: opts.resultsS3, ...common });
}

export async function createImageService(deps: ServiceDeps, opts: ServiceOptions): Promise<ImageService> {
  const log = deps.log ?? pino({ level: 'silent' });
  const pool = new Pool({ concurrency: opts.concurrency, queue: opts.queue });
  const metrics = new BackendMetrics(() => pool.load);
  const store = await openResultsStore(opts, (removed) => {
    metrics.lastSweep.set(Date.now() / 1000);
    if (removed === 0) return;
    metrics.resultsExpired.inc(removed);
    // Counts only: an id is a capability to a customer's image, and the GDPR log needs none.
    log.info({ removed, store: store.location }, 'expired results deleted');
  });
  let watermarks: WatermarkStore;
  try {
    watermarks = await WatermarkStore.open(opts.watermarksDir, opts.watermarkLimits);
  } catch (err) {
    await store.close();
    throw err;
  }
  metrics.watchResults(() => store.audit());
  const openapi = readFileSync(opts.openapiPath ?? OPENAPI_DEFAULT);
  // Fail at start, not on the first request, if the document in the repo is broken.
  JSON.parse(openapi.toString('utf8'));
  const limits = opts.limits;
  const bodyRate = opts.bodyRate ?? DEFAULT_BODY_RATE;
  const retryAfter = String(opts.retryAfterSeconds);
  /** `webhook` jobs answered 202 whose outcome is not yet handed to the sender. */
  const sending = new Set<Promise<void>>();

  const overloaded = (): HttpError => new HttpError(503, 'overloaded', 'the backend is at capacity; retry later', undefined, { 'retry-after': retryAfter });

  function finish(req: IncomingMessage, res: ServerResponse, status: number, headers: Record<string, string>, body: Buffer | string): void {
    if (res.headersSent || res.destroyed) return;
    res.setHeader('x-backend-load', pool.header());
    // An unread body must not be parsed as the next request, and reading it only to
    // throw it away could cost far more than the answer: close after this response.
    if (!req.complete && hasBody(req)) res.setHeader('connection', 'close');
    res.writeHead(status, { ...headers, 'content-length': String(Buffer.byteLength(body)) });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  function fail(req: IncomingMessage, res: ServerResponse, rid: string, err: unknown, context: 'process' | 'internal'): void {
    if (err instanceof ClientGone) return;
    let e = asHttpError(err);
    if (err instanceof PoolWaitTimeout) { metrics.rejected.inc(); e = overloaded(); }
    if (e === undefined) {
      if (context === 'process') {
        // The processor maps what it understands; anything else came from a decoder
        // choking on input, which is the client's image, not our failure.
        log.warn({ err, request_id: rid }, 'unmapped processing error');
        e = new HttpError(422, 'unprocessable_image', 'the image could not be processed');
      } else {
        log.error({ err, request_id: rid }, 'internal error');
        e = new HttpError(500, 'internal_error', 'internal error');
      }
    }
    finish(req, res, e.status, { ...e.headers, 'content-type': 'application/json' }, errorBody(e, rid));
  }

  /** The image and its options, from a raw body or a multipart form. */
  async function readImageRequest(req: IncomingMessage, res: ServerResponse): Promise<{ input: Buffer; options: ImageOptions }> {
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

  function resultJson(id: string, r: ProcessResult): Record<string, unknown> {
    const saved = r.input.bytes - r.output.bytes;
    return {
      id,
      input: { format: r.input.format, width: r.input.width, height: r.input.height, bytes: r.input.bytes },
      output: { format: r.output.format, width: r.output.width, height: r.output.height, bytes: r.output.bytes, url: `/v1/results/${id}` },
      savings: { bytes: saved, percent: r.input.bytes > 0 ? Math.round((saved * 1000) / r.input.bytes) / 10 : 0 },
    };
  }

  /** `onStart` hears when the job leaves the queue and gets its slot. */
  async function runProcess(slot: Reservation, endpoint: Endpoint, input: Buffer, options: ImageOptions, req: IncomingMessage, onStart?: () => void): Promise<ProcessResult> {
    const customer = customerOf(req);
    const source: WatermarkSource = (id) => watermarks.get(customer, id);
    const accepted = acceptedFormats(req.headers.accept);
    return slot.run(() => { onStart?.(); return timed(endpoint, () => deps.process(input, options, limits, source, accepted)); }, limits.timeoutMs);
  }

  async function timed<T>(endpoint: Endpoint, job: () => Promise<T>): Promise<T> {
    const end = metrics.processing.startTimer({ endpoint });
    let timer: NodeJS.Timeout | undefined;
    const work = job();
    try {
      // A backstop only: the processor enforces limits.timeoutMs itself. The slot stays
      // held until `work` settles (see Pool), so a stuck job still counts as load.
      return await Promise.race([work, new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new HttpError(504, 'processing_timeout', `processing took longer than ${limits.timeoutMs} ms`)), limits.timeoutMs + TIMEOUT_GRACE_MS);
      })]);
    } finally {
      clearTimeout(timer);
      void work.then(() => end(), () => end());
    }
  }

  /**
   * Writes the output to the customer's bucket when `store` asks (first: a bucket that
   * refuses fails the request before a temporary result exists), then to the results,
   * unless `store.temporary: false` makes the bucket the only copy (no url then).
   */
  async function keep(id: string, result: ProcessResult, options: ImageOptions): Promise<Record<string, unknown>> {
    const target = options.store;
    if (target !== undefined) await deps.storeOutput!(target, result.data, result.contentType);
    const temporary = target?.temporary !== false;
    if (temporary) await store.put(id, result.data, result.contentType);
    const meta = resultJson(id, result);
    if (!temporary) delete (meta.output as Record<string, unknown>).url;
    // Where it went, never how: the credentials are not echoed.
    if (target !== undefined) meta.store = { provider: target.provider, bucket: target.bucket, path: target.path };
    return meta;
  }

  /**
   * Stores the result and answers with JSON or, when asked, the bytes. `timing` (ms since
   * the request arrived: body read, slot granted, processed) becomes Server-Timing, so a
   * client or a bench can split its latency into upload, queue, processing, storing and
   * the answer's own transfer (the rest).
   */
  async function answerResult(
    req: IncomingMessage, res: ServerResponse, result: ProcessResult, options: ImageOptions,
    timing: { arrived: number; read: number; started: number; processed: number },
  ): Promise<void> {
    const id = store.newId();
    const meta = await keep(id, result, options);
    const stored = performance.now();
    const dur = (a: number, b: number): string => Math.max(0, b - a).toFixed(2);
    res.setHeader('server-timing', `upload;dur=${dur(timing.arrived, timing.read)}, queue;dur=${dur(timing.read, timing.started)}, process;dur=${dur(timing.started, timing.processed)}, store;dur=${dur(timing.processed, stored)}`);
    if (wantsImage(req.headers.accept)) {
      finish(req, res, 200, {
        'content-type': result.contentType,
        'x-image-result': JSON.stringify(meta),
        'content-location': `/v1/results/${id}`,
        'x-content-type-options': 'nosniff',
        'cache-control': 'no-store',
        vary: 'Accept',
      }, result.data);
    } else {
      finish(req, res, 200, { 'content-type': 'application/json', 'cache-control': 'no-store', vary: 'Accept' }, JSON.stringify(meta));
    }
  }

  /** `webhook` in the options: answer 202 now, process while still holding the slot, POST the outcome. */
  function acceptAsync(req: IncomingMessage, res: ServerResponse, rid: string, slot: Reservation, endpoint: Endpoint, input: Buffer, options: ImageOptions): void {
    const webhooks = deps.webhooks!;
    const target = options.webhook!;
    const id = store.newId();
    finish(req, res, 202, { 'content-type': 'application/json' }, JSON.stringify({ id, status: 'accepted', url: `/v1/results/${id}` }));
    const task = (async () => {
      let payload: object;
      try {
        const result = await runProcess(slot, endpoint, input, options, req);
        payload = { ...(await keep(id, result, options)), status: 'succeeded' };
      } catch (err) {
        let e = asHttpError(err);
        if (err instanceof PoolWaitTimeout) e = overloaded();
        if (e === undefined) {
          log.warn({ err, request_id: rid }, 'async processing failed');
          e = new HttpError(422, 'unprocessable_image', 'the image could not be processed');
        }
        payload = { id, status: 'failed', error: { code: e.code, message: e.message, request_id: rid } };
      } finally {
        slot.release();
      }
      webhooks.send(customerOf(req), target.url, payload, target.delaySeconds * 1000);
    })();
    sending.add(task);
    void task.finally(() => sending.delete(task));
  }

  async function handleImages(req: IncomingMessage, res: ServerResponse, rid: string, endpoint: Endpoint, ticket: Ticket): Promise<void> {
    const slot = ticket.slot;
    const arrived = performance.now();
    let input: Buffer;
    let options: ImageOptions;
    if (endpoint === 'images_fetch') {
      ({ input, options } = await readFetchRequest(req, res));
    } else {
      ({ input, options } = await readImageRequest(req, res));
    }
    if (options.store !== undefined && deps.storeOutput === undefined) throw new HttpError(400, 'bad_request', 'store is not enabled on this backend', 'store');
    if (options.webhook !== undefined) {
      if (deps.webhooks === undefined) throw new HttpError(400, 'bad_request', 'webhooks are not enabled on this backend', 'webhook');
      // Signed with the customer's own key: a request with no customer (not through the gateway) has none.
      if (customerOf(req) === '') throw new HttpError(400, 'bad_request', 'webhooks are signed with the customer\'s own key: send the request through the gateway', 'webhook');
      // From here the background job owns the reservation and releases it when done.
      ticket.detached = true;
      acceptAsync(req, res, rid, slot, endpoint, input, options);
      return;
    }
    const read = performance.now();
    let started = read;
    let result: ProcessResult;
    try {
      result = await runProcess(slot, endpoint, input, options, req, () => { started = performance.now(); });
    } catch (err) {
      fail(req, res, rid, err, 'process');
      return;
    }
    await answerResult(req, res, result, options, { arrived, read, started, processed: performance.now() });
  }

  async function readFetchRequest(req: IncomingMessage, res: ServerResponse): Promise<{ input: Buffer; options: ImageOptions }> {
    const ct = req.headers['content-type'] ?? '';
    if (!/^application\/json\s*(;|$)/i.test(ct)) throw new HttpError(415, 'unsupported_media_type', 'send {"url","options"} as application/json');
    const text = (await readBody(req, res, MAX_JSON_BODY, bodyRate)).toString('utf8');
    let raw: unknown;
    try { raw = JSON.parse(text); } catch { throw new HttpError(400, 'bad_request', 'the body must be valid JSON'); }
    const { url, options } = deps.parseFetchRequest(raw);
    const fetched = await deps.fetch(url);
    if (fetched.body.length === 0) throw new HttpError(422, 'unprocessable_image', 'the URL returned an empty body', 'url');
    return { input: fetched.body, options };
  }

  async function handleDetect(req: IncomingMessage, res: ServerResponse, rid: string, slot: Reservation): Promise<void> {
    const detect = deps.detect;
    if (detect === undefined) throw new HttpError(503, 'unavailable', 'face detection is not enabled on this backend');
    const { input } = await readImageRequest(req, res);
    let detection: Detection;
    try {
      detection = await slot.run(() => timed('detect', () => detect(input)), limits.timeoutMs);
    } catch (err) {
      fail(req, res, rid, err, 'process');
      return;
    }
    const body = {
      faces: detection.faces.map((f) => ({ box: { x: f.box.x, y: f.box.y, width: f.box.width, height: f.box.height }, score: f.score })),
      width: detection.width,
      height: detection.height,
    };
    finish(req, res, 200, { 'content-type': 'application/json', 'cache-control': 'no-store' }, JSON.stringify(body));
  }

  /** PUT stores (201 with its size), DELETE removes (204, or 404 when there was none). */
  async function handleWatermark(req: IncomingMessage, res: ServerResponse, rid: string, slot: Reservation, id: string): Promise<void> {
    const customer = customerOf(req);
    if (req.method === 'DELETE') {
      if (!(await watermarks.delete(customer, id))) throw new HttpError(404, 'not_found', `no watermark "${id}"`);
      finish(req, res, 204, {}, '');
      return;
    }
    const input = await readBody(req, res, watermarks.limits.maxBytes, bodyRate);
    if (input.length === 0) throw new HttpError(400, 'bad_request', 'the body is empty; send the watermark image as the body', 'file');
    let stored;
    try {
      stored = await slot.run(() => timed('watermarks', () => watermarks.put(customer, id, input)), limits.timeoutMs);
    } catch (err) {
      fail(req, res, rid, err, 'process');
      return;
    }
    finish(req, res, 201, { 'content-type': 'application/json', 'cache-control': 'no-store' }, JSON.stringify(stored));
  }

  async function handleResult(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    const found = isResultId(id) ? await store.get(id) : undefined;
    if (found === undefined) throw new HttpError(404, 'not_found', 'no such result (unknown, or expired)');
    if (res.destroyed) { found.stream.destroy(); return; }
    res.setHeader('x-backend-load', pool.header());
    res.writeHead(200, {
      'content-type': found.contentType,
      'content-length': String(found.size),
      'x-content-type-options': 'nosniff',
      'cache-control': `private, max-age=${found.remainingSeconds}`,
      // Results are served from the API's origin: never let one act as a document.
      'content-security-policy': "default-src 'none'; sandbox",
    });
    if (req.method === 'HEAD') { found.stream.destroy(); res.end(); return; }
    found.stream.on('error', () => res.destroy());
    found.stream.pipe(res);
  }

  const POST_ENDPOINTS: Readonly<Record<string, Endpoint>> = { '/v1/images': 'images', '/v1/images/fetch': 'images_fetch', '/v1/detect': 'detect' };

  async function handle(req: IncomingMessage, res: ServerResponse, rid: string, endpoint: Endpoint, path: string): Promise<void> {
    const method = req.method ?? 'GET';
    const allow = (methods: string): void => {
      if (!methods.split(', ').includes(method)) throw new HttpError(405, 'method_not_allowed', `use ${methods}`, undefined, { allow: methods });
    };
    switch (endpoint) {
      case 'images':
      case 'images_fetch':
      case 'detect':
      case 'watermarks': {
        allow(endpoint === 'watermarks' ? 'PUT, DELETE' : 'POST');
        // Admission before the body: a full backend answers without reading a byte.
        const slot = pool.reserve();
        if (slot === undefined) { metrics.rejected.inc(); throw overloaded(); }
        const ticket: Ticket = { slot, detached: false };
        // A client that leaves while queued gives its place back at once.
        res.once('close', () => { if (!ticket.detached) slot.release(); });
        try {
          if (endpoint === 'detect') await handleDetect(req, res, rid, slot);
          else if (endpoint === 'watermarks') await handleWatermark(req, res, rid, slot, path.slice('/v1/watermarks/'.length));
          else await handleImages(req, res, rid, endpoint, ticket);
        } finally {
          if (!ticket.detached) slot.release();
        }
        return;
      }
      case 'results':
        allow('GET, HEAD');
        return handleResult(req, res, path.slice('/v1/results/'.length));
      case 'openapi':
        allow('GET, HEAD');
        finish(req, res, 200, { 'content-type': 'application/json' }, openapi);
        return;
      case 'healthz':
        allow('GET, HEAD');
        finish(req, res, 200, { 'content-type': 'application/json', 'cache-control': 'no-store' }, JSON.stringify({ status: 'ok', load: pool.load }));
        return;
      case 'metrics': {
        allow('GET');
        const text = await metrics.registry.metrics();
        finish(req, res, 200, { 'content-type': metrics.registry.contentType }, text);
        return;
      }
      default:
        throw new HttpError(404, 'not_found', `no route for ${method} ${path}`);
    }
  }

  const server = createServer(onRequest);
  // Taking over `Expect: 100-continue` (Node would otherwise invite every body at once)
  // lets a full backend refuse before the client uploads anything.
  server.on('checkContinue', onRequest);
  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    const rid = requestId(req.headers['x-request-id']);
    res.setHeader('x-request-id', rid);
    const path = (req.url ?? '/').split('?', 1)[0]!;
    const endpoint: Endpoint = POST_ENDPOINTS[path]
      ?? (path.startsWith('/v1/results/') ? 'results' : path.startsWith('/v1/watermarks/') ? 'watermarks'
        : path === '/openapi.json' ? 'openapi' : path === '/healthz' ? 'healthz' : path === '/metrics' ? 'metrics' : 'other');
    res.once('finish', () => metrics.requestDone(endpoint, res.statusCode, (performance.now() - started) / 1000));
    handle(req, res, rid, endpoint, path).catch((err: unknown) => fail(req, res, rid, err, 'internal'));
  }
  // The gateway keeps connections to its backends open; outlive its idle timeout.
  server.keepAliveTimeout = 60_000;
  server.headersTimeout = 30_000;
  // Bounds a slow upload (which holds a place in the queue) without cutting off large ones.
  server.requestTimeout = Math.max(60_000, limits.timeoutMs * 2);
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable || err.code === 'ECONNRESET') { socket.destroy(); return; }
    const body = errorBody(new HttpError(400, 'bad_request', 'malformed HTTP request'), requestId(undefined));
    socket.end(`HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  });

  let closing: Promise<void> | undefined;
  return {
    server,
    pool,
    store,
    watermarks,
    metrics,
    listen(port, host) {
      return new Promise<number>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve((server.address() as AddressInfo).port);
        });
      });
    },
    close() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
          // In-flight requests get no grace here; the CLI drains before calling close.
          server.closeAllConnections();
        });
        // A job that finished its processing may still be storing its result: its webhook
        // must be handed to the sender (or queue) before that closes.
        await Promise.all([...sending]);
        await deps.webhooks?.close();
        await store.close();
        await watermarks.close();
      })();
      return closing;
    },
  };
}
