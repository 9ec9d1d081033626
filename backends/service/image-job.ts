// An image request once its input and options are read: admission to a processing slot,
// the job (timed, with a backstop timeout), the result kept (results store, the
// customer's bucket) and the answer (JSON or the bytes), or, with `webhook`, 202 now
// and the outcome POSTed later.
import { HttpError } from '../../common/errors.js';
import { formatWork, WORK_HEADER } from '../../common/work-report.js';
import type { ImageOptions, ProcessResult, WatermarkSource } from '../image/types.js';
import { customerOf, type Exchange, type ServiceContext, type Ticket } from './context.js';
import { acceptedFormats, asHttpError, wantsImage } from './http.js';
import type { ImageRequest } from './image-request.js';
import { PoolWaitTimeout, type Reservation } from './pool.js';
import { fail, finish, overloaded } from './respond.js';

// Past the processor's own timeout, how long the HTTP layer waits before answering 504.
const TIMEOUT_GRACE_MS = 2000;

/** Runs `job` under the processing histogram, racing a backstop past limits.timeoutMs. */
export async function timed<T>(ctx: ServiceContext, endpoint: string, job: () => Promise<T>): Promise<T> {
  const end = ctx.metrics.processing.startTimer({ endpoint });
  const timeoutMs = ctx.limits.timeoutMs;
  let timer: NodeJS.Timeout | undefined;
  const work = job();
  try {
    // A backstop only: the processor enforces limits.timeoutMs itself. The slot stays
    // held until `work` settles (see Pool), so a stuck job still counts as load.
    return await Promise.race([work, new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new HttpError(504, 'processing_timeout', `processing took longer than ${timeoutMs} ms`)), timeoutMs + TIMEOUT_GRACE_MS);
    })]);
  } finally {
    clearTimeout(timer);
    void work.then(() => end(), () => end());
  }
}

/** `onStart` hears when the job leaves the queue and gets its slot. */
function runProcess(ctx: ServiceContext, ex: Exchange, slot: Reservation, endpoint: string, { input, options }: ImageRequest, onStart?: () => void): Promise<ProcessResult> {
  const customer = customerOf(ex.req);
  const source: WatermarkSource = (id) => ctx.watermarks.get(customer, id);
  const accepted = acceptedFormats(ex.req.headers.accept);
  return slot.run(() => { onStart?.(); return timed(ctx, endpoint, () => ctx.deps.process(input, options, ctx.limits, source, accepted)); }, ctx.limits.timeoutMs);
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

/**
 * Writes the output to the customer's bucket when `store` asks (first: a bucket that
 * refuses fails the request before a temporary result exists), then to the results,
 * unless `store.temporary: false` makes the bucket the only copy (no url then).
 */
async function keep(ctx: ServiceContext, id: string, result: ProcessResult, options: ImageOptions): Promise<Record<string, unknown>> {
  const target = options.store;
  if (target !== undefined) await ctx.deps.storeOutput!(target, result.data, result.contentType);
  const temporary = target?.temporary !== false;
  if (temporary) await ctx.store.put(id, result.data, result.contentType);
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
  ctx: ServiceContext, ex: Exchange, result: ProcessResult, options: ImageOptions,
  timing: { arrived: number; read: number; started: number; processed: number },
): Promise<void> {
  const id = ctx.store.newId();
  const meta = await keep(ctx, id, result, options);
  const stored = performance.now();
  const dur = (a: number, b: number): string => Math.max(0, b - a).toFixed(2);
  ex.res.setHeader('server-timing', `upload;dur=${dur(timing.arrived, timing.read)}, queue;dur=${dur(timing.read, timing.started)}, process;dur=${dur(timing.started, timing.processed)}, store;dur=${dur(timing.processed, stored)}`);
  // What the work took, for the gateway to price (it removes the header before the client sees it).
  if (result.work !== undefined) ex.res.setHeader(WORK_HEADER, formatWork(result.work));
  if (wantsImage(ex.req.headers.accept)) {
    finish(ctx, ex, 200, {
      'content-type': result.contentType,
      'x-image-result': JSON.stringify(meta),
      'content-location': `/v1/results/${id}`,
      'x-content-type-options': 'nosniff',
      'cache-control': 'no-store',
      vary: 'Accept',
    }, result.data);
  } else {
    finish(ctx, ex, 200, { 'content-type': 'application/json', 'cache-control': 'no-store', vary: 'Accept' }, JSON.stringify(meta));
  }
}

/** `webhook` in the options: answer 202 now, process while still holding the slot, POST the outcome. */
function acceptAsync(ctx: ServiceContext, ex: Exchange, slot: Reservation, endpoint: string, request: ImageRequest): void {
  const webhooks = ctx.deps.webhooks!;
  const target = request.options.webhook!;
  const id = ctx.store.newId();
  finish(ctx, ex, 202, { 'content-type': 'application/json' }, JSON.stringify({ id, status: 'accepted', url: `/v1/results/${id}` }));
  const task = (async () => {
    let payload: object;
    try {
      const result = await runProcess(ctx, ex, slot, endpoint, request);
      payload = { ...(await keep(ctx, id, result, request.options)), status: 'succeeded' };
    } catch (err) {
      let e = asHttpError(err);
      if (err instanceof PoolWaitTimeout) e = overloaded(ctx);
      if (e === undefined) {
        ctx.log.warn({ err, request_id: ex.rid }, 'async processing failed');
        e = new HttpError(422, 'unprocessable_image', 'the image could not be processed');
      }
      payload = { id, status: 'failed', error: { code: e.code, message: e.message, request_id: ex.rid } };
    } finally {
      slot.release();
    }
    webhooks.send(customerOf(ex.req), target.url, payload, target.delaySeconds * 1000);
  })();
  ctx.sending.add(task);
  void task.finally(() => ctx.sending.delete(task));
}

/**
 * Processes a read request in the ticket's slot and answers. `arrived`: when the request
 * arrived (performance.now()), for Server-Timing's upload.
 */
export async function processAndAnswer(ctx: ServiceContext, ex: Exchange, ticket: Ticket, endpoint: string, request: ImageRequest, arrived: number): Promise<void> {
  const { options } = request;
  if (options.store !== undefined && ctx.deps.storeOutput === undefined) throw new HttpError(400, 'bad_request', 'store is not enabled on this backend', 'store');
  if (options.webhook !== undefined) {
    if (ctx.deps.webhooks === undefined) throw new HttpError(400, 'bad_request', 'webhooks are not enabled on this backend', 'webhook');
    // Signed with the customer's own key: a request with no customer (not through the gateway) has none.
    if (customerOf(ex.req) === '') throw new HttpError(400, 'bad_request', 'webhooks are signed with the customer\'s own key: send the request through the gateway', 'webhook');
    // From here the background job owns the reservation and releases it when done.
    ticket.detached = true;
    acceptAsync(ctx, ex, ticket.slot, endpoint, request);
    return;
  }
  const read = performance.now();
  let started = read;
  let result: ProcessResult;
  try {
    result = await runProcess(ctx, ex, ticket.slot, endpoint, request, () => { started = performance.now(); });
  } catch (err) {
    fail(ctx, ex, err, 'process');
    return;
  }
  await answerResult(ctx, ex, result, options, { arrived, read, started, processed: performance.now() });
}
