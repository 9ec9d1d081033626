import { withDeadline } from '../guard/deadline.js';
import { sendError } from '../http/errors.js';
import { answerJson } from '../http/json-answer.js';
import type { RequestContext, Stage } from '../pipeline/context.js';
import { periodsAt } from '../store/calendar.js';
import type { Store, Usage } from '../store/types.js';

export const ACCOUNT_PATH = '/v1/account';

/** One quota period in the answer; limit and remaining are null when the plan sets none. */
interface Period {
  readonly used: number;
  readonly limit: number | null;
  readonly remaining: number | null;
  readonly resets_at: string;
}

export interface AccountBody {
  readonly customer: string;
  readonly plan: string;
  readonly limits: {
    readonly scope: 'customer' | 'key';
    readonly rate: number;
    readonly burst: number;
    readonly quota_day: number | null;
    readonly quota_month: number | null;
    readonly max_inflight: number | null;
    readonly max_body_bytes: number;
  };
  readonly usage: {
    readonly day: Period;
    readonly month: Period;
    readonly inflight: number;
    /** Requests the token bucket would admit right now, as this call's own decision saw it; null without a bucket. */
    readonly burst_remaining: number | null;
  };
}

const orNull = (n: number): number | null => (n > 0 ? n : null);

function period(used: number, limit: number, resetsAtMs: number): Period {
  return { used, limit: orNull(limit), remaining: limit > 0 ? Math.max(0, limit - used) : null, resets_at: new Date(resetsAtMs).toISOString() };
}

export function accountBody(ctx: RequestContext, usage: Usage, nowMs: number): AccountBody {
  const id = ctx.identity!;
  const p = id.policy;
  const periods = periodsAt(nowMs);
  return {
    customer: id.customer,
    plan: id.plan.name,
    limits: {
      scope: id.subject === id.customer ? 'customer' : 'key',
      rate: p.rate,
      burst: p.burst,
      quota_day: orNull(p.quotaDay),
      quota_month: orNull(p.quotaMonth),
      max_inflight: orNull(p.maxInflight),
      max_body_bytes: id.maxBodyBytes,
    },
    usage: {
      day: period(usage.dayUsed, p.quotaDay, nowMs + periods.dayResetMs),
      month: period(usage.monthUsed, p.quotaMonth, periods.monthEndMs),
      inflight: usage.inflight,
      burst_remaining: p.rate > 0 && ctx.decision !== undefined ? ctx.decision.remaining : null,
    },
  };
}

/**
 * `GET /v1/account`, answered by the gateway: the caller's plan, its limits, and today's
 * and this month's usage read from the store the limits count in. Runs after the limits
 * stage, so the call itself is limited and counted like any other (and shows in the
 * usage it returns). The store read is bounded by store.timeout_ms; past it, 503.
 */
export function accountStage(store: Store, timeoutMs: number): Stage {
  return (ctx) => {
    if (ctx.path !== ACCOUNT_PATH || ctx.identity === undefined) return true;
    const method = ctx.req.method;
    if (method !== 'GET' && method !== 'HEAD') return sendError(ctx, 405, 'method_not_allowed', 'use GET', ['allow', 'GET, HEAD']);
    return withDeadline(store.usage(ctx.identity.subject), timeoutMs, 'usage').then(
      (usage) => answerJson(ctx, 200, accountBody(ctx, usage, Date.now())),
      () => sendError(ctx, 503, 'unavailable', 'the usage store did not answer; retry later', ['retry-after', '1']),
    );
  };
}
