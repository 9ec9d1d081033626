import type { Logger } from 'pino';
import type { BillingConfig } from '../config/types.js';
import { DAY_MS } from '../store/calendar.js';
import type { Store, UsageRow } from '../store/types.js';
import type { CreditMetrics } from './credit-metrics.js';

/** One finished request's part of its customer's day. */
export interface UsageEvent {
  readonly customer: string;
  /** When it was admitted (or answered), ms: which UTC day it counts in. */
  readonly at: number;
  /** Passed the limits (and so was, or may have been, worked on). */
  readonly admitted: boolean;
  /** Refused by the limits (429). */
  readonly refused: boolean;
  /** Answered from a kept response (Idempotency-Key), not worked on or charged. */
  readonly replayed: boolean;
  readonly units: number;
  readonly refunded: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Operation class (gateway/credits/operation.ts), counted for admitted requests. */
  readonly cls: string;
  readonly auto: boolean;
  readonly face: boolean;
  /** Started megapixels the backend decoded (0: not reported). */
  readonly megapixels: number;
}

/** Rows kept while the store cannot take them; past this, the oldest are dropped (and logged). */
const MAX_PENDING_ROWS = 100_000;

/**
 * Daily usage per customer, counted in memory and written in one batch every flush_ms
 * (billing.usage.flush_ms), so counting costs the request path no store call: one
 * script per customer-day per flush, auto-pipelined into one round trip. What a crash
 * loses is at most one flush interval of counts (the quotas themselves are exact: they
 * are counted by the limits, not here). A batch the store refuses is kept and tried
 * again with the next one.
 */
export class UsageMeter {
  private rows = new Map<string, { customer: string; day: number; counts: Record<string, number> }>();
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly cfg: BillingConfig['usage'],
    private readonly metrics: CreditMetrics,
    private readonly log: Logger,
  ) {
    this.timer = setInterval(() => { void this.flush(); }, cfg.flush_ms);
    this.timer.unref();
    metrics.watchUsage(() => this.rows.size);
  }

  record(e: UsageEvent): void {
    const day = Math.floor(e.at / DAY_MS);
    const k = `${e.customer}\0${day}`;
    let row = this.rows.get(k);
    if (row === undefined) {
      row = { customer: e.customer, day, counts: {} };
      this.rows.set(k, row);
    }
    const c = row.counts;
    if (e.admitted) {
      add(c, 'requests', 1);
      add(c, `class:${e.cls}`, 1);
      if (e.auto) add(c, 'feature:auto', 1);
      if (e.face) add(c, 'feature:face', 1);
      add(c, 'megapixels', e.megapixels);
    }
    if (e.refused) add(c, 'refused', 1);
    if (e.replayed) add(c, 'replayed', 1);
    add(c, 'units', e.units);
    add(c, 'refunded', e.refunded);
    add(c, 'bytes_in', e.bytesIn);
    add(c, 'bytes_out', e.bytesOut);
  }

  /** Writes what was counted since the last flush (one flush at a time). */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.write());
    return this.flushing;
  }

  /** The last flush, for a reload or shutdown. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  private async write(): Promise<void> {
    if (this.rows.size === 0) return;
    const batch = this.rows;
    this.rows = new Map();
    const rows: UsageRow[] = [...batch.values()];
    try {
      await this.store.addUsage(rows, this.cfg.retention_days);
      this.metrics.usageFlushes.inc({ result: 'ok' });
    } catch (err) {
      this.metrics.usageFlushes.inc({ result: 'error' });
      this.log.warn({ rows: rows.length, err: (err as Error).message }, 'usage not written; kept for the next flush');
      this.keep(batch);
    }
  }

  /** Puts a batch the store refused back in front of what was counted since. */
  private keep(batch: Map<string, { customer: string; day: number; counts: Record<string, number> }>): void {
    for (const [k, row] of this.rows) {
      const had = batch.get(k);
      if (had === undefined) batch.set(k, row);
      else for (const [name, n] of Object.entries(row.counts)) add(had.counts, name, n);
    }
    let drop = batch.size - MAX_PENDING_ROWS;
    if (drop > 0) {
      this.log.error({ dropped: drop }, 'usage rows dropped: the store has refused them for too long');
      for (const k of batch.keys()) { if (drop-- <= 0) break; batch.delete(k); }
    }
    this.rows = batch;
  }
}

function add(c: Record<string, number>, name: string, n: number): void {
  if (n !== 0) c[name] = (c[name] ?? 0) + n;
}
