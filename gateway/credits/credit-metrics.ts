import { Counter, Gauge } from 'prom-client';
import { labelChildren, type Metrics } from '../observe/metrics.js';

type CounterChild = ReturnType<Counter<string>['labels']>;

/**
 * Credits' metrics, in the process's one registry. Label sets are plans x fixed kinds,
 * never customers (as for the limits' metrics).
 */
export class CreditMetrics {
  readonly units: Counter<'plan' | 'kind'>;
  readonly settlements: Counter<'result'>;
  readonly idempotency: Counter<'result'>;
  readonly quotaWarnings: Counter<'result'>;
  readonly usageFlushes: Counter<'result'>;
  readonly usagePending: Gauge;
  private readonly unitsChild = labelChildren((...v): CounterChild => this.units.labels(...v));
  private readonly settleChild = labelChildren((...v): CounterChild => this.settlements.labels(...v));
  private pendingRows: () => number = () => 0;

  constructor(m: Metrics) {
    const registers = [m.registry];
    this.units = new Counter({
      name: 'sluice_credit_units_total',
      help: 'Units by plan and kind: charged (at admission), settled_more and settled_back (the difference to what the work cost), refunded (a failed response).',
      labelNames: ['plan', 'kind'] as const, registers,
    });
    this.settlements = new Counter({
      name: 'sluice_credit_settlements_total',
      help: 'Responses settled after the work, by result: exact (the estimate was right), more, back, refund (failed response), error (the store call failed).',
      labelNames: ['result'] as const, registers,
    });
    this.idempotency = new Counter({
      name: 'sluice_idempotency_requests_total',
      help: 'Requests with an Idempotency-Key, by result: new, replayed, in_progress (409), mismatch (422), store_error (503), too_large (303 replay).',
      labelNames: ['result'] as const, registers,
    });
    this.quotaWarnings = new Counter({
      name: 'sluice_quota_warnings_total',
      help: 'Quota thresholds crossed, by result: queued (a quota.threshold webhook), duplicate (another gateway sent it), no_pipeline (memory store: logged only), error.',
      labelNames: ['result'] as const, registers,
    });
    this.usageFlushes = new Counter({
      name: 'sluice_usage_flushes_total', help: 'Batched writes of daily usage counters, by result (ok, error).',
      labelNames: ['result'] as const, registers,
    });
    const pending = (): number => this.pendingRows();
    this.usagePending = new Gauge({
      name: 'sluice_usage_pending_rows', help: 'Customer-days of usage counted in this process and not yet written to the store.',
      registers, collect() { this.set(pending()); },
    });
  }

  unitsOf(plan: string, kind: 'charged' | 'settled_more' | 'settled_back' | 'refunded', n: number): void {
    if (n > 0) this.unitsChild(plan, kind).inc(n);
  }

  settled(result: 'exact' | 'more' | 'back' | 'refund' | 'error'): void {
    this.settleChild(result).inc();
  }

  watchUsage(read: () => number): void {
    this.pendingRows = read;
  }
}
