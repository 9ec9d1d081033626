import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import type { UpstreamConfig } from '../config/types.js';
import { sendError } from '../http/errors.js';
import { lingerClose } from '../../common/linger.js';
import { bodyPending } from '../../common/request-body.js';
import type { Metrics } from '../observe/metrics.js';
import type { RequestContext, Stage } from '../pipeline/context.js';
import type { PoolSet } from '../upstream/pool-set.js';
import type { Attempt, Target } from '../upstream/target.js';
import { NO_BODY, RequestBody, type BodySource } from './body.js';
import { clientResponseHeaders, upstreamRequestHeaders } from './headers.js';
import { RetryBudget, Retrier, statusReason, type RetryReason } from './retry.js';
import { ClientClosed, mapUpstreamError } from './upstream-errors.js';
import { parseWork, WORK_HEADER } from '../../common/work-report.js';

export interface ProxyOptions {
  /** Body limit for routes without an identity (public routes) and no route limit. */
  readonly defaultMaxBodyBytes: number;
  /** Where a retry picks its next target. */
  readonly pools: PoolSet;
  /** Told when the client's response head has gone out (the credits settle the request's price then). */
  readonly onResponseHead?: (ctx: RequestContext) => void;
}

const CONTINUE = /(^|,)\s*100-continue\s*(,|$)/i;

/**
 * proxy: stream the request to the chosen target and the response back, with
 * backpressure both ways (undici's dispatch API; a small body is also copied so it can be
 * replayed), and send it to another target when a failure allows (retry.ts).
 */
export function proxyStage(metrics: Metrics, opts: ProxyOptions): Stage {
  // Per upstream config, so a reload that swaps the config starts a fresh budget.
  const budgets = new WeakMap<UpstreamConfig, RetryBudget>();
  const budgetOf = (u: UpstreamConfig): RetryBudget => {
    let b = budgets.get(u);
    if (b === undefined) budgets.set(u, b = new RetryBudget(u.retry));
    return b;
  };
  return (ctx) => {
    const req = ctx.req;
    const limit = ctx.route!.max_body_bytes ?? ctx.identity?.maxBodyBytes ?? opts.defaultMaxBodyBytes;
    const declared = req.headers['content-length'];
    const chunked = req.headers['transfer-encoding'] !== undefined;
    const n = chunked || declared === undefined ? 0 : Number(declared);
    if (n > limit) return refuseBody(ctx, limit);
    const target = ctx.target!;
    const retry = target.upstream.retry;
    let body: BodySource = NO_BODY;
    const read = ctx.body;
    // Read whole by an earlier stage (an Idempotency-Key request): sent, and replayed, from that copy.
    if (read !== undefined) body = { next: () => read, replayable: () => true };
    else if (chunked || n > 0) {
      body = new RequestBody(ctx, req, limit, retry.attempts > 0 ? retry.max_buffered_body_bytes : 0);
      // The server leaves 100 Continue to us (checkContinue), so a refused body is never invited.
      const expect = req.headers.expect;
      if (expect !== undefined && CONTINUE.test(expect)) ctx.res.writeContinue();
    }
    const upstream = opts.pools.get(target.upstream.name);
    const route = ctx.compiledRoute!;
    const exchange = new Exchange(ctx, metrics, body, new Retrier(upstream, budgetOf(target.upstream), metrics, req.method!), opts.onResponseHead, {
      path: route.rewrite === undefined ? ctx.forwardPath : route.rewrite(ctx),
      method: req.method as Dispatcher.HttpMethod,
      headers: upstreamRequestHeaders(ctx),
      headersTimeout: route.timeouts?.headersMs,
      bodyTimeout: route.timeouts?.bodyMs,
    });
    exchange.send(target);
    return false;
  };
}

/** Answer 413 without forwarding the body; sendError then ends the connection, which is what stops the upload. */
function refuseBody(ctx: RequestContext, limit: number): false {
  return sendError(ctx, 413, 'payload_too_large', `request body exceeds ${limit} bytes`);
}

/** One client request and its attempts: each attempt is a dispatch with a handler of its own. */
class Exchange {
  constructor(
    readonly ctx: RequestContext,
    private readonly metrics: Metrics,
    private readonly body: BodySource,
    private readonly retrier: Retrier,
    readonly onResponseHead: ((ctx: RequestContext) => void) | undefined,
    private readonly request: { path: string; method: Dispatcher.HttpMethod; headers: string[]; headersTimeout: number | undefined; bodyTimeout: number | undefined },
  ) {}

  send(target: Target): void {
    this.ctx.target = target;
    this.retrier.sentTo(target);
    const handler = new ProxyHandler(this.ctx, this.metrics, target.begin(), this);
    target.pool.dispatch({ origin: target.origin, ...this.request, body: this.body.next() }, handler);
    const connectMs = this.ctx.compiledRoute!.timeouts?.connectMs;
    if (connectMs !== undefined) handler.connectWithin(connectMs);
  }

  /**
   * The next target after a failure, when the failure allows one: never once the client
   * has had a byte of the response, and never after the client left.
   */
  retryTarget(reason: RetryReason | undefined): Target | undefined {
    const res = this.ctx.res;
    if (reason === undefined || res.headersSent || res.destroyed) return undefined;
    return this.retrier.next(reason, this.body.replayable());
  }
}

class ProxyHandler implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private clientGone = false;
  /** Aborted for a retry: undici's callbacks for this attempt are no longer ours to act on. */
  private superseded = false;
  /**
   * Under an Idempotency-Key, the last chunk seen, written only once the next one comes or
   * the response has been kept: with Content-Length framing the client has the whole
   * response at its last byte, so that byte waits until a repeat would find it kept.
   */
  private held: Buffer | undefined = undefined;
  private connectTimer: NodeJS.Timeout | undefined;

  /** The balancer hears how each exchange went: latency, status, advertised load, failures. */
  constructor(private readonly ctx: RequestContext, private readonly metrics: Metrics, private readonly attempt: Attempt, private readonly exchange: Exchange) {
    // The client may have left while an earlier stage waited (a store lookup): its
    // response closed before there was an attempt to cancel.
    this.clientGone = ctx.res.destroyed;
    ctx.upstream = this;
  }

  /**
   * The client went away, or the gateway answered it itself (server.ts): abort the
   * upstream request instead of leaving it to finish. One still queued for a pool
   * connection has no controller yet: it is aborted the moment it gets one, rather than
   * sent and its answer written nowhere.
   */
  cancel(): void {
    this.clientGone = true;
    this.controller?.abort(new ClientClosed());
  }

  /**
   * A route's timeouts.connect_ms: the pool's connect timeout is the upstream's, so a
   * route's own is kept here, from dispatch to the moment the attempt has a connection
   * (connecting or waiting in the pool's queue). Passing it fails the attempt as a
   * connect timeout (retried elsewhere when the budget allows, else 504); the request,
   * should it still get a connection, is dropped then.
   */
  connectWithin(ms: number): void {
    if (this.controller !== undefined) return;
    this.connectTimer = setTimeout(() => {
      if (this.controller !== undefined || this.superseded) return;
      this.onResponseError(undefined, new ConnectTimeout());
      this.superseded = true;
    }, ms);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    clearTimeout(this.connectTimer);
    if (this.superseded) {
      controller.abort(new RetriedElsewhere());
      return;
    }
    this.controller = controller;
    if (this.clientGone) controller.abort(new ClientClosed());
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    if (statusCode < 200) return; // 1xx informational: wait for the final response
    this.attempt.responded(statusCode, headers['x-backend-load']);
    const next = this.exchange.retryTarget(statusReason(statusCode, this.ctx.target!.upstream.retry.statuses));
    if (next !== undefined) {
      this.supersede(controller);
      this.exchange.send(next);
      return;
    }
    const res = this.ctx.res;
    // Gone, or answered by the gateway itself (a body too slow) while this attempt ran.
    if (res.destroyed || res.headersSent) {
      controller.abort(new ClientClosed());
      return;
    }
    this.ctx.work = parseWork(headers[WORK_HEADER]);
    // An answer that starts before the client has sent its whole body may end before it
    // too (then lingerClose): the client must not take this connection back for reuse.
    if (bodyPending(this.ctx.req)) res.setHeader('connection', 'close');
    res.writeHead(statusCode, statusMessage ?? '', clientResponseHeaders(this.ctx, headers));
    this.ctx.idempotency?.start(statusCode, headers);
    this.exchange.onResponseHead?.(this.ctx);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.superseded) return;
    const res = this.ctx.res;
    // A destroyed response never drains: pausing for it would hold the pool connection forever.
    if (res.destroyed) {
      controller.abort(new ClientClosed());
      return;
    }
    this.ctx.bytesOut += chunk.length;
    const claim = this.ctx.idempotency;
    let out = chunk;
    if (claim !== undefined) {
      claim.data(chunk);
      const previous = this.held;
      this.held = chunk;
      if (previous === undefined) return;
      out = previous;
    }
    if (!res.write(out)) {
      controller.pause();
      res.once('drain', resumer(controller));
    }
  }

  onResponseEnd(): void {
    if (this.superseded) return;
    // An upstream that answered before it had the whole request body gets no more of it
    // (undici stops sending); the rest still comes over the client's connection.
    lingerClose(this.ctx.res);
    this.attempt.end();
    const res = this.ctx.res;
    // A response kept for Idempotency-Key repeats is kept before the client sees its end.
    const kept = this.ctx.idempotency?.end();
    if (kept === undefined) res.end();
    else void kept.then(() => this.endWith(res));
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, err: Error): void {
    clearTimeout(this.connectTimer);
    if (this.superseded) return;
    const ctx = this.ctx;
    const m = mapUpstreamError(err);
    const upstreamFault = m.kind !== 'client' && m.kind !== 'body_limit';
    this.attempt.end(upstreamFault);
    if (ctx.res.destroyed || ctx.res.writableEnded) return; // the client left, or has its answer; nothing to tell
    if (upstreamFault) {
      this.metrics.upstreamErrors.inc({ upstream: ctx.target!.upstream.name, kind: m.kind });
      const next = this.exchange.retryTarget(m.retry);
      if (next !== undefined) {
        this.superseded = true;
        this.exchange.send(next);
        return;
      }
    }
    // sendError closes the connection when the request body was not read to its end.
    sendError(ctx, ...m.answer, m.message);
  }

  private endWith(res: RequestContext['res']): void {
    const last = this.held;
    this.held = undefined;
    if (res.destroyed) return;
    if (last === undefined) res.end();
    else res.end(last);
  }

  // The rejected answer's connection is cut rather than its body read: a 502/503 body is
  // small, but waiting for it would delay the retry for nothing.
  private supersede(controller: Dispatcher.DispatchController): void {
    this.superseded = true;
    this.attempt.end();
    controller.abort(new RetriedElsewhere());
  }
}

/** Built here, outside the handler's methods, so the closure exists only when the client pushes back. */
function resumer(controller: Dispatcher.DispatchController): () => void {
  return () => controller.resume();
}

class ConnectTimeout extends Error {
  readonly code = 'UND_ERR_CONNECT_TIMEOUT';
  constructor() { super("no connection to the upstream within the route's timeouts.connect_ms"); }
}

class RetriedElsewhere extends Error {
  readonly code = 'SLUICE_RETRIED';
  constructor() { super('answer discarded: the request was sent to another target'); }
}
