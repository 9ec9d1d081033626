import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Identity } from '../auth/identity.js';
import type { RouteConfig } from '../config/types.js';
import type { Decision, LimitReqResult } from '../store/types.js';
import type { Target } from '../upstream/pool-set.js';

/** What a request carries from stage to stage; plain data, filled in as it goes. */
export class RequestContext {
  route: RouteConfig | undefined = undefined;
  identity: Identity | undefined = undefined;
  decision: Decision | undefined = undefined;
  /** How the limits stage decided: allowed, a deny reason, fallback_open, store_closed or skipped. */
  limitResult = 'skipped';
  /** What limit_req's store decided (when, on its clock; the delay; a refusal), for the access log. */
  limitReq: LimitReqResult | undefined = undefined;
  leaseId: string | undefined = undefined;
  leaseSource: 'store' | 'fallback' = 'store';
  target: Target | undefined = undefined;
  /** RateLimit-Policy / RateLimit / Retry-After as a flat [name, value, ...] list. */
  readonly limitHeaders: string[] = [];
  bytesIn = 0;
  bytesOut = 0;
  errorCode: string | undefined = undefined;
  /** While an upstream attempt is in flight: aborts it, for when the gateway answers the client itself. */
  cancelUpstream: (() => void) | undefined = undefined;

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
