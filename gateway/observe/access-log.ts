import type { Logger } from 'pino';
import type { Metrics } from './metrics.js';
import type { RequestContext } from '../pipeline/context.js';
import type { LimitReqResult } from '../store/types.js';

/**
 * What every finished request leaves behind: one access-log line and its metrics.
 * Only fields the gateway chose are logged (never raw headers), so credentials cannot leak.
 */
export function recordRequest(ctx: RequestContext, log: Logger | undefined, metrics: Metrics): void {
  const seconds = (performance.now() - ctx.startedAt) / 1000;
  const status = ctx.res.headersSent ? ctx.res.statusCode : 499;
  const route = ctx.route?.name ?? '(none)';
  const plan = ctx.identity?.plan.name ?? '(none)';
  metrics.requestDone(route, status, plan, seconds);
  if (log === undefined) return;
  log.info({
    request_id: ctx.requestId,
    method: ctx.req.method,
    client: ctx.clientAddress,
    path: ctx.path,
    listener: ctx.listener,
    status,
    route,
    customer: ctx.identity?.customer,
    plan: ctx.identity?.plan.name,
    limit: ctx.limitResult,
    limit_req: limitReqStatus(ctx.limitReq),
    limit_req_at: ctx.limitReq?.at,
    limit_req_delay_ms: ctx.limitReq?.delayMs,
    upstream: ctx.target?.origin,
    bytes_in: ctx.bytesIn,
    bytes_out: ctx.bytesOut,
    duration_ms: Math.round(seconds * 1e6) / 1000,
    error: ctx.errorCode,
  }, 'request');
}

/** nginx's $limit_req_status, in lower case; undefined where no limit_req zone applied. */
function limitReqStatus(r: LimitReqResult | undefined): 'passed' | 'delayed' | 'rejected' | undefined {
  if (r === undefined) return undefined;
  return !r.passed ? 'rejected' : r.delayMs > 0 ? 'delayed' : 'passed';
}
