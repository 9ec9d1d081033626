import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import type { Dispatcher } from 'undici';
import { sendError } from '../http/errors.js';
import { lingerClose } from '../http/linger.js';
import { bodyPending } from '../http/request-body.js';
import type { Metrics } from '../observe/metrics.js';
import type { RequestContext, Stage } from '../pipeline/context.js';
import type { Attempt } from '../upstream/target.js';
import { clientResponseHeaders, upstreamRequestHeaders } from './headers.js';
import { ClientClosed, mapUpstreamError, PayloadTooLarge } from './upstream-errors.js';

export interface ProxyOptions {
  readonly trustForwarded: boolean;
  /** Body limit for routes without an identity (public routes) and no route limit. */
  readonly defaultMaxBodyBytes: number;
}

const CONTINUE = /(^|,)\s*100-continue\s*(,|$)/i;

/**
 * proxy: stream the request to the chosen target and the response back, with
 * backpressure both ways (undici's dispatch API, no buffering of either body).
 */
export function proxyStage(metrics: Metrics, opts: ProxyOptions): Stage {
  return (ctx) => {
    const req = ctx.req;
    const limit = ctx.route!.max_body_bytes ?? ctx.identity?.maxBodyBytes ?? opts.defaultMaxBodyBytes;
    const declared = req.headers['content-length'];
    const chunked = req.headers['transfer-encoding'] !== undefined;
    let body: Transform | null = null;
    if (chunked) {
      body = meteredBody(ctx, req, limit);
    } else if (declared !== undefined) {
      const n = Number(declared);
      if (n > limit) return refuseBody(ctx, limit);
      if (n > 0) body = meteredBody(ctx, req, limit);
    }
    // The server leaves 100 Continue to us (checkContinue), so a refused body is never invited.
    const expect = req.headers.expect;
    if (body !== null && expect !== undefined && CONTINUE.test(expect)) ctx.res.writeContinue();
    const target = ctx.target!;
    const handler = new ProxyHandler(ctx, metrics, target.begin());
    target.pool.dispatch({
      origin: target.origin,
      path: req.url!,
      method: req.method as Dispatcher.HttpMethod,
      headers: upstreamRequestHeaders(ctx, opts.trustForwarded),
      body,
    }, handler);
    return false;
  };
}

/** Answer 413 without forwarding the body; sendError then ends the connection, which is what stops the upload. */
function refuseBody(ctx: RequestContext, limit: number): false {
  return sendError(ctx, 413, 'payload_too_large', `request body exceeds ${limit} bytes`);
}

/**
 * The request body as undici sees it: the client's request piped through a counter that
 * fails once more than `limit` bytes arrived (a chunked body declares no size; a declared
 * one was checked already and the parser holds the client to it).
 *
 * undici destroys the stream it is handed when the upstream fails. Handing it this one
 * rather than the request leaves the request whole (pipe() never destroys its source),
 * so the rest of the body can still be drained while the client reads its answer
 * (lingerClose); a destroyed request would stall the connection instead.
 */
function meteredBody(ctx: RequestContext, req: IncomingMessage, limit: number): Transform {
  const counter = new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
      ctx.bytesIn += chunk.length;
      if (ctx.bytesIn > limit) done(new PayloadTooLarge(limit));
      else done(null, chunk);
    },
  });
  req.pipe(counter);
  return counter;
}

class ProxyHandler implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private clientGone = false;
  private readonly onDrain = (): void => this.controller?.resume();

  /** The balancer hears how each exchange went: latency, status, advertised load, failures. */
  constructor(private readonly ctx: RequestContext, private readonly metrics: Metrics, private readonly attempt: Attempt) {
    // A client that goes away aborts the upstream request instead of leaving it to finish.
    // A request still queued for a pool connection has no controller yet: it is aborted
    // the moment it gets one, rather than sent and its answer written nowhere. The client
    // may also have left while an earlier stage waited (a store lookup): no 'close' then.
    this.clientGone = ctx.res.destroyed;
    ctx.res.once('close', () => {
      if (ctx.res.writableFinished) return;
      this.clientGone = true;
      this.controller?.abort(new ClientClosed());
    });
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.clientGone) controller.abort(new ClientClosed());
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    if (statusCode < 200) return; // 1xx informational: wait for the final response
    this.attempt.responded(statusCode, headers['x-backend-load']);
    const res = this.ctx.res;
    if (res.destroyed) {
      controller.abort(new ClientClosed());
      return;
    }
    res.writeHead(statusCode, statusMessage ?? '', clientResponseHeaders(this.ctx, headers));
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const res = this.ctx.res;
    // A destroyed response never drains: pausing for it would hold the pool connection forever.
    if (res.destroyed) {
      controller.abort(new ClientClosed());
      return;
    }
    this.ctx.bytesOut += chunk.length;
    if (!res.write(chunk)) {
      controller.pause();
      res.once('drain', this.onDrain);
    }
  }

  onResponseEnd(): void {
    // An upstream that answered before it had the whole request body gets no more of it
    // (undici stops sending); the rest still comes over the client's connection.
    if (bodyPending(this.ctx.req)) lingerClose(this.ctx.res);
    this.ctx.res.end();
    this.attempt.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    const ctx = this.ctx;
    const m = mapUpstreamError(err);
    const upstreamFault = m.kind !== 'client' && m.kind !== 'body_limit';
    this.attempt.end(upstreamFault);
    if (ctx.res.destroyed) return; // the client left; nothing to tell
    if (upstreamFault) {
      this.metrics.upstreamErrors.inc({ upstream: ctx.target!.upstream.name, kind: m.kind });
    }
    // sendError closes the connection when the request body was not read to its end.
    sendError(ctx, m.status, m.code, m.message);
  }
}
