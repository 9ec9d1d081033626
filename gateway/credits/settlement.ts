import type { Logger } from 'pino';
import type { BillingConfig } from '../config/types.js';
import type { RequestContext } from '../pipeline/context.js';
import { countedIn } from '../store/calendar.js';
import type { Store } from '../store/types.js';
import type { CreditMetrics } from './credit-metrics.js';
import { workUnits } from './pricing.js';
import type { QuotaWatch } from './quota-warnings.js';

/** What settling one request did to its units. */
export interface Settled {
  /** Charged beyond the admission (the work cost more than the estimate). */
  readonly more: number;
  /** Given back: the work cost less, or the response failed. */
  readonly back: number;
}

const NOTHING: Settled = Object.freeze({ more: 0, back: 0 });

/** The statuses that refund, from the config's list (`5xx` for all of 500-599). */
export function refundStatuses(list: BillingConfig['refund_statuses']): ReadonlySet<number> {
  const out = new Set<number>();
  for (const s of list) {
    if (typeof s === 'number') out.add(s);
    else for (let c = 500; c <= 599; c++) out.add(c);
  }
  return out;
}

/**
 * After the response, makes what a request was charged what it cost:
 * - a response that failed because of Sluice or a backend (billing.refund_statuses, 5xx
 *   by default; never 4xx) gives back its quota units (its tokens stay spent: the work
 *   was attempted, and the bucket protects the backends);
 * - otherwise, with costs configured, the price of the work the backend reported (or,
 *   without a report, the full estimate, which the burst may have capped) against what
 *   was charged: the difference is charged, or given back, in the bucket and the quotas.
 * A give-back that lands where a request could have been refused clears that subject's
 * cached denials on every gateway (a `denial` invalidation). Only decisions of the
 * shared store are settled: a fail-open admission took from this process's own share.
 */
export class Settler {
  constructor(
    private readonly store: Store,
    private readonly refunds: ReadonlySet<number>,
    private readonly metrics: CreditMetrics,
    private readonly quota: QuotaWatch | undefined,
    private readonly log: Logger,
  ) {}

  /**
   * Once per request, as soon as its status and the backend's report are known: when the
   * backend's response head arrives (before its body streams, so the settlement reaches
   * the store ahead of this client's next request on this gateway), or, for an answer
   * of the gateway's own, when it ends.
   */
  settle(ctx: RequestContext): Settled {
    if (ctx.settled !== undefined) return ctx.settled;
    const s = this.compute(ctx);
    ctx.settled = s;
    return s;
  }

  private compute(ctx: RequestContext): Settled {
    const id = ctx.identity;
    if (id === undefined || ctx.charged === 0 || ctx.limitResult !== 'allowed' || !ctx.res.headersSent) return NOTHING;
    let delta: number;
    let refund = false;
    if (this.refunds.has(ctx.res.statusCode)) {
      delta = -ctx.charged;
      refund = true;
    } else if (id.pricing !== undefined) {
      const actual = ctx.work === undefined ? ctx.estimate : workUnits(id.pricing, ctx.route!.name, ctx.work);
      delta = actual - ctx.charged;
    } else {
      return NOTHING;
    }
    if (delta === 0) {
      this.metrics.settled('exact');
      return NOTHING;
    }
    const { day, month } = countedIn(ctx.decision!.dayResetMs, ctx.decidedAt);
    const floor = id.pricing?.maxUnits ?? 1;
    const result = refund ? 'refund' : delta > 0 ? 'more' : 'back';
    this.metrics.settled(result);
    this.metrics.unitsOf(id.plan.name, refund ? 'refunded' : delta > 0 ? 'settled_more' : 'settled_back', Math.abs(delta));
    this.store.settle(id.subject, id.policy, { tokens: refund ? 0 : delta, quota: delta, day, month, floor }).then((s) => {
      if (delta > 0) this.quota?.charged(id, s, delta);
      if (s.lifted) return this.store.publish({ kind: 'denial', subject: id.subject });
      return undefined;
    }).catch((err: unknown) => {
      this.metrics.settled('error');
      this.log.warn({ customer: id.customer, units: delta, err: (err as Error).message }, 'settlement not recorded');
    });
    return delta > 0 ? { more: delta, back: 0 } : { more: 0, back: -delta };
  }
}
