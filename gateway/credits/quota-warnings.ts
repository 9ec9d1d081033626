import type { Logger } from 'pino';
import type { Identity } from '../auth/identity.js';
import { countedIn, DAY_MS, isoDate } from '../store/calendar.js';
import type { Decision, Settled, Store } from '../store/types.js';
import type { AccountEvents } from './account-events.js';
import type { CreditMetrics } from './credit-metrics.js';

/** Told of every unit counted against a quota, so a crossing of a threshold is noticed where it happens. */
export interface QuotaWatch {
  /** An admission the store decided (a lease included) that took `units`. */
  admitted(id: Identity, d: Decision, units: number): void;
  /** A settlement that counted `units` more; `s` is the counters afterwards. */
  charged(id: Identity, s: Settled, units: number): void;
}

/** One quota period as seen by one count: which period, its limit, the count before and after. */
interface Crossing {
  readonly period: 'day' | 'month';
  /** d<yyyy-mm-dd> or m<yyyy-mm>. */
  readonly id: string;
  readonly start: string;
  readonly quota: number;
  readonly before: number;
  readonly after: number;
  /** Until a day after the period ends: the mark must outlive it, and need not outlive it by much. */
  readonly markTtlMs: number;
}

/**
 * quota.threshold events: when a count takes a subject's day or month quota across one of
 * the thresholds (80% and 100% by default), the customer's webhook_url gets one event per
 * threshold and period, however many gateways see counts cross it. Every unit of a quota
 * is counted by exactly one gateway (by admit.lua, a lease it holds, or a settlement), so
 * the crossing is noticed where it happens; a give-back that lets the count cross again,
 * or a lease's units taken twice, would notice it twice, and the store's mark (SET NX,
 * markThreshold) lets only the first through.
 */
export class QuotaWarnings implements QuotaWatch {
  constructor(
    private readonly percents: readonly number[],
    private readonly store: Store,
    private readonly events: AccountEvents | undefined,
    private readonly metrics: CreditMetrics,
    private readonly log: Logger,
  ) {}

  admitted(id: Identity, d: Decision, units: number): void {
    if (id.webhookUrl === undefined || units <= 0) return;
    const p = id.policy;
    const { day, month } = countedIn(d.dayResetMs);
    if (p.quotaDay > 0) this.check(id, dayPeriod(day, p.quotaDay, d.dayUsed - units, d.dayUsed));
    if (p.quotaMonth > 0) this.check(id, monthPeriod(month, p.quotaMonth, d.monthUsed - units, d.monthUsed));
  }

  charged(id: Identity, s: Settled, units: number): void {
    if (id.webhookUrl === undefined || units <= 0) return;
    const p = id.policy;
    if (p.quotaDay > 0 && s.day > 0) this.check(id, dayPeriod(s.day, p.quotaDay, s.dayUsed - units, s.dayUsed));
    if (p.quotaMonth > 0 && s.month > 0) this.check(id, monthPeriod(s.month, p.quotaMonth, s.monthUsed - units, s.monthUsed));
  }

  private check(id: Identity, c: Crossing): void {
    for (const percent of this.percents) {
      const at = Math.ceil(c.quota * percent / 100);
      if (c.before < at && c.after >= at) void this.crossed(id, c, percent);
    }
  }

  private async crossed(id: Identity, c: Crossing, percent: number): Promise<void> {
    try {
      if (!(await this.store.markThreshold(id.subject, c.id, percent, c.markTtlMs))) {
        this.metrics.quotaWarnings.inc({ result: 'duplicate' });
        return;
      }
      const event = {
        type: 'quota.threshold',
        timestamp: new Date().toISOString(),
        data: {
          customer: id.customer, plan: id.plan.name, subject: id.subject, period: c.period, period_start: c.start,
          threshold_percent: percent, quota: c.quota, used: c.after, unit: id.pricing === undefined ? 'requests' : 'units',
        },
      };
      this.log.info({ customer: id.customer, period: c.id, threshold_percent: percent, used: c.after, quota: c.quota }, 'quota threshold crossed');
      if (this.events === undefined) {
        this.metrics.quotaWarnings.inc({ result: 'no_pipeline' });
        return;
      }
      this.events.send(id.customer, id.webhookUrl!, event);
      this.metrics.quotaWarnings.inc({ result: 'queued' });
    } catch (err) {
      this.metrics.quotaWarnings.inc({ result: 'error' });
      this.log.warn({ customer: id.customer, err: (err as Error).message }, 'quota threshold: could not mark or send');
    }
  }
}

function dayPeriod(day: number, quota: number, before: number, after: number): Crossing {
  const start = isoDate(day);
  return { period: 'day', id: `d${start}`, start, quota, before, after, markTtlMs: Math.max(1, (day + 2) * DAY_MS - Date.now()) };
}

function monthPeriod(month: number, quota: number, before: number, after: number): Crossing {
  const y = Math.floor(month / 100);
  const m = month % 100;
  const start = `${y}-${String(m).padStart(2, '0')}`;
  return { period: 'month', id: `m${start}`, start: `${start}-01`, quota, before, after, markTtlMs: Math.max(1, Date.UTC(y, m, 2) - Date.now()) };
}
