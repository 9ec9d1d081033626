import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Identity } from '../auth/identity.js';
import type { RouteConfig } from '../config/types.js';
import type { IdempotencyClaim } from '../credits/idempotency.js';
import type { Operation } from '../credits/operation.js';
import type { WorkReport } from '../../common/work-report.js';
import type { CompiledRoute } from '../route/compiled-route.js';
import type { Decision, LimitReqResult } from '../store/types.js';
import type { Target } from '../upstream/pool-set.js';
import type { ConfiguredCode, ErrorCode } from '../../common/error-codes.js';

/** What a request carries from stage to stage; plain data, filled in as it goes. */
export class RequestContext {
  /** The listener's name ("default" for the one plain listener of server.host/port). */
  listener = 'default';
  /** The client's address: the peer's, or behind trusted proxies what server.real_ip finds. Filled before the chain runs. */
  clientAddress = '';
  /** The peer is a trusted proxy (server.real_ip.trusted): what it says in X-Forwarded-For is passed on. */
  peerTrusted = false;
  /** nginx's $uri: the path decoded and normalised (http/request-target.ts); routes match it. */
  uri = '';
  /** The query string without its ?, undefined when the target has no ?. */
  query: string | undefined = undefined;
  /** The target sent upstream when the route does not rewrite it (the client's, dot segments resolved). */
  forwardPath = '';
  /** nginx's $host: the Host header without port, lower-case; set by the route stage. */
  host = '';
  route: RouteConfig | undefined = undefined;
  /** The route as the request path runs it (its actions compiled); set with `route`. */
  compiledRoute: CompiledRoute | undefined = undefined;
  /** A regex route's captures ($1..$9), when anything the route does reads them. */
  captures: RegExpExecArray | undefined = undefined;
  identity: Identity | undefined = undefined;
  decision: Decision | undefined = undefined;
  /** How the limits stage decided: allowed, a deny reason, fallback_open, store_closed or skipped. */
  limitResult = 'skipped';
  /** What limit_req's store decided (when, on its clock; the delay; a refusal), for the access log. */
  limitReq: LimitReqResult | undefined = undefined;
  leaseId: string | undefined = undefined;
  leaseSource: 'store' | 'fallback' = 'store';
  target: Target | undefined = undefined;
  /** What the request is, for its price and the customer's usage (gateway/credits/operation.ts). */
  operation: Operation | undefined = undefined;
  /** Its price before the work, in units (1 without costs). */
  estimate = 0;
  /** Units the limits stage took for it (0: it was not admitted, or admitted free). */
  charged = 0;
  /** When the limits stage admitted it (ms): which UTC day and month its units went to. */
  decidedAt = 0;
  /** What the backend reported it did (common/work-report.ts), to settle the price. */
  work: WorkReport | undefined = undefined;
  /** What settling it charged more or gave back (gateway/credits/settlement.ts); undefined until settled. */
  settled: { readonly more: number; readonly back: number } | undefined = undefined;
  /** The request body, already read whole (an Idempotency-Key request): the proxy sends this instead of streaming. */
  body: Buffer | undefined = undefined;
  /** The Idempotency-Key this request claimed; the proxy stage shows it the response. */
  idempotency: IdempotencyClaim | undefined = undefined;
  /** Answered with a kept response (a repeated Idempotency-Key). */
  replayed = false;
  /** Headers every answer to this request carries, as a flat [name, value, ...] list: RateLimit-Policy / RateLimit / Retry-After, a rotated key's Deprecation / Sunset. */
  readonly limitHeaders: string[] = [];
  bytesIn = 0;
  bytesOut = 0;
  errorCode: ErrorCode | ConfiguredCode | undefined = undefined;
  /**
   * The upstream attempt, once there is one: cancel() stops it when the gateway answers
   * the client itself or the client leaves (a no-op once the attempt is over). An object
   * with a method, not a closure: see load-tests/PROFILE.md on closures in properties.
   */
  upstream: { cancel(): void } | undefined = undefined;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly requestId: string,
    readonly path: string,
    readonly startedAt: number,
  ) {}
}

/**
 * A stage either lets the request go on (true) or has answered it (false). It returns
 * a promise only when it has to wait (a store call on a cache miss, say), so the
 * common path stays synchronous.
 */
export type Stage = (ctx: RequestContext) => boolean | Promise<boolean>;
