import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { sendError } from '../http/errors.js';
import type { Metrics } from '../observe/metrics.js';
import type { RequestContext, Stage } from '../pipeline/context.js';
import { clientResponseHeaders, upstreamRequestHeaders } from './headers.js';
import { mapUpstreamError, PayloadTooLarge } from './upstream-errors.js';

export interface ProxyOptions {
  readonly trustForwarded: boolean;
  /** Body limit for routes without an identity (public routes) and no route limit. */
  readonly defaultMaxBodyBytes: number;
}

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
    let body: Dispatcher.DispatchOptions['body'] = null;
    if (declared !== undefined && !chunked) {
      const n = Number(declared);
      if (n > limit) return refuseBody(ctx, limit);
      if (n > 0) {
        ctx.bytesIn = n;
        body = req;
      }
    } else if (chunked) {
      body = Readable.from(limitedBody(ctx, req, limit), { objectMode: false });
    }
    const target = ctx.target!;
    target.pool.dispatch({
      origin: target.origin,
      path: req.url!,
      method: req.method as Dispatcher.HttpMethod,
      headers: upstreamRequestHeaders(ctx, opts.trustForwarded),
      body,
    }, new ProxyHandler(ctx, metrics));
    return false;
  };
}

/** Answer 413 without reading the body; closing the connection is what stops the upload. */
function refuseBody(ctx: RequestContext, limit: number): false {
  ctx.res.shouldKeepAlive = false;
  return sendError(ctx, 413, 'payload_too_large', `request body exceeds ${limit} bytes`, ['connection', 'close']);
}

/** A chunked body has no declared size: count it as it streams and stop at the limit. */
async function* limitedBody(ctx: RequestContext, req: IncomingMessage, limit: number): AsyncGenerator<Buffer> {
  for await (const chunk of req as AsyncIterable<Buffer>) {
    ctx.bytesIn += chunk.length;
    if (ctx.bytesIn > limit) {
      ctx.res.shouldKeepAlive = false;
      throw new PayloadTooLarge(limit);
    }
    yield chunk;
  }
}

class ProxyHandler implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private readonly onDrain = (): void => this.controller?.resume();

  constructor(private readonly ctx: RequestContext, private readonly metrics: Metrics) {
    // A client that goes away aborts the upstream request instead of leaving it to finish.
    ctx.res.once('close', () => {
      if (!ctx.res.writableFinished) this.controller?.abort(new Error('client closed the connection'));
    });
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    if (statusCode < 200) return; // 1xx informational: wait for the final response
    const res = this.ctx.res;
    if (res.destroyed) return;
    res.writeHead(statusCode, statusMessage ?? '', clientResponseHeaders(this.ctx, headers));
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const res = this.ctx.res;
    this.ctx.bytesOut += chunk.length;
    if (!res.write(chunk)) {
      controller.pause();
      res.once('drain', this.onDrain);
    }
  }

  onResponseEnd(): void {
    this.ctx.res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    const ctx = this.ctx;
    if (ctx.res.destroyed) return; // the client left; nothing to tell
    const m = mapUpstreamError(err);
    if (m.kind !== 'client' && m.kind !== 'body_limit') {
      this.metrics.upstreamErrors.inc({ upstream: ctx.target!.upstream.name, kind: m.kind });
    }
    if (m.kind === 'client' || m.kind === 'body_limit') ctx.res.shouldKeepAlive = false;
    sendError(ctx, m.status, m.code, m.message, m.kind === 'body_limit' ? ['connection', 'close'] : []);
  }
}
