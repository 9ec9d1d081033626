import type { Logger } from 'pino';
import type { SluiceConfig } from '../config/types.js';
import type { RequestContext } from '../pipeline/context.js';
import type { Store } from '../store/types.js';
import { accountEvents, type AccountEvents } from './account-events.js';
import type { CreditMetrics } from './credit-metrics.js';
import type { Keeper } from './idempotency.js';
import { QuotaWarnings } from './quota-warnings.js';
import { refundStatuses, Settler } from './settlement.js';
import { UsageMeter } from './usage-meter.js';

const ADMITTED = new Set(['allowed', 'fallback_open', 'shadow']);
const REFUSED = new Set(['rate_limited', 'quota_exceeded', 'concurrency_limited']);

/**
 * Credits for one generation of the request path: quota warnings (which the limits
 * stage tells of admissions), the settlement of each response, idempotency claims, and
 * the daily usage meter, which every finished request with an identity feeds.
 */
export class Credits {
  readonly warnings: QuotaWarnings;
  private readonly settler: Settler;
  private readonly meter: UsageMeter;
  private readonly events: AccountEvents | undefined;
  /** Where Idempotency-Key claims keep their responses (gateway/credits/idempotency.ts). */
  readonly keeper: Keeper;

  constructor(cfg: SluiceConfig, store: Store, private readonly metrics: CreditMetrics, log: Logger) {
    const refunds = refundStatuses(cfg.billing.refund_statuses);
    this.keeper = { store, ttlMs: cfg.billing.idempotency.ttl_s * 1000, refunds, maxBytes: cfg.billing.idempotency.max_response_bytes, log };
    this.events = accountEvents(cfg.store, log);
    this.warnings = new QuotaWarnings(cfg.billing.quota_warnings.thresholds, store, this.events, metrics, log);
    this.settler = new Settler(store, refunds, metrics, this.warnings, log);
    this.meter = new UsageMeter(store, cfg.billing.usage, metrics, log);
  }

  /** The backend's response head is in: settle now, ahead of the body. */
  readonly atResponseHead = (ctx: RequestContext): void => {
    if (ctx.identity !== undefined) this.settler.settle(ctx);
  };

  /** A request ended (answered, or the client left): keep or release its Idempotency-Key, settle what it cost (unless done at its head), count it. */
  finish(ctx: RequestContext): void {
    const id = ctx.identity;
    if (id === undefined) return;
    ctx.idempotency?.abandon();
    const s = this.settler.settle(ctx);
    this.metrics.unitsOf(id.plan.name, 'charged', ctx.charged);
    const op = ctx.operation;
    const w = ctx.work;
    this.meter.record({
      customer: id.customer,
      at: ctx.decidedAt > 0 ? ctx.decidedAt : Date.now(),
      admitted: ADMITTED.has(ctx.limitResult),
      refused: REFUSED.has(ctx.limitResult),
      replayed: ctx.replayed,
      units: ctx.charged + s.more,
      refunded: s.back,
      bytesIn: ctx.bytesIn,
      bytesOut: ctx.bytesOut,
      cls: op?.cls ?? 'other',
      auto: w?.auto ?? op?.auto ?? false,
      face: w?.detect ?? op?.face ?? false,
      megapixels: w === undefined ? 0 : Math.ceil(w.pixels / 1_000_000),
    });
  }

  /** Retiring the generation: the last usage is written, the event queue closed. */
  async stop(): Promise<void> {
    await this.meter.stop();
    await this.events?.close();
  }
}
