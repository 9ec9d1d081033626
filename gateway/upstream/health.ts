import { request, type Dispatcher } from 'undici';
import type { HealthCheckConfig, OutlierConfig } from '../config/types.js';
import type { OutcomeSink, Target } from './target.js';

/** Where health changes are told (metrics and the log). */
export interface HealthEvents {
  ejected(target: Target, source: 'outlier' | 'active', forMs: number | undefined): void;
  restored(target: Target): void;
}

/**
 * Passive outlier ejection (Envoy's consecutive-5xx / gateway-failure detector, with
 * nginx's max_fails/fail_timeout as the per-target form): enough failures in a row take a
 * target out for a while; each further ejection lasts longer, and never more than
 * max_ejection_percent of the upstream is out at once (a pool-wide failure is more likely
 * the gateway's or the network's than every backend's, and ejecting everything would
 * turn a partial outage into a total one).
 */
export class Outlier implements OutcomeSink {
  targets: readonly Target[] = [];

  constructor(private readonly cfg: OutlierConfig, private readonly events: HealthEvents) {}

  outcome(t: Target, ok: boolean, now: number): void {
    if (ok) {
      t.consecutiveFailures = 0;
      // A target that has behaved for as long as its last ejection starts its next run of
      // trouble from the base time again.
      if (t.ejections > 0 && now - t.ejectedUntil > t.lastEjectionMs) t.ejections = 0;
      return;
    }
    t.consecutiveFailures++;
    const threshold = t.cfg.max_fails ?? this.cfg.consecutive_failures;
    if (threshold === 0 || t.consecutiveFailures < threshold || now < t.ejectedUntil) return;
    if (!this.mayEject(now)) return;
    t.ejections++;
    const ms = t.cfg.fail_timeout_ms ?? Math.min(this.cfg.base_ejection_ms * t.ejections, this.cfg.max_ejection_ms);
    t.lastEjectionMs = ms;
    t.ejectedUntil = now + ms;
    t.consecutiveFailures = 0;
    this.events.ejected(t, 'outlier', ms);
  }

  private mayEject(now: number): boolean {
    let out = 0;
    for (const x of this.targets) if (now < x.ejectedUntil) out++;
    return out + 1 <= Math.floor((this.targets.length * this.cfg.max_ejection_percent) / 100);
  }
}

/**
 * Active checks: GET `path` on every target each interval over a dispatcher of their own
 * (so a check never queues behind real traffic on a saturated pool). A 2xx or 3xx within
 * timeout_ms passes. unhealthy_threshold failures in a row take a target out regardless
 * of max_ejection_percent (the check is direct evidence, not an inference from traffic);
 * healthy_threshold passes in a row bring it back, ending a passive ejection too.
 */
export class ActiveHealth {
  private timer: NodeJS.Timeout | undefined;
  private readonly passes = new Map<Target, number>();
  private readonly fails = new Map<Target, number>();
  private readonly pending = new Set<Target>();
  private closed = false;

  constructor(
    private readonly cfg: HealthCheckConfig,
    private readonly targets: readonly Target[],
    private readonly dispatcher: Dispatcher,
    private readonly events: HealthEvents,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.round(), this.cfg.interval_ms);
    this.timer.unref();
    this.round();
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
  }

  private round(): void {
    // A check still waiting (a target that accepts and never answers) is not doubled up.
    for (const t of this.targets) if (!this.pending.has(t)) void this.check(t);
  }

  private async check(t: Target): Promise<void> {
    this.pending.add(t);
    let ok = false;
    try {
      const res = await request(`${t.origin}${this.cfg.path}`, {
        dispatcher: this.dispatcher,
        signal: AbortSignal.timeout(this.cfg.timeout_ms),
        headers: { 'user-agent': 'sluice-health-check' },
      });
      await res.body.dump();
      ok = res.statusCode >= 200 && res.statusCode < 400;
    } catch {
      ok = false;
    } finally {
      this.pending.delete(t);
    }
    if (this.closed) return;
    if (ok) this.passed(t);
    else this.failed(t);
  }

  private passed(t: Target): void {
    this.fails.set(t, 0);
    const n = (this.passes.get(t) ?? 0) + 1;
    this.passes.set(t, n);
    if (n < this.cfg.healthy_threshold || t.available(performance.now())) return;
    t.activeUp = true;
    t.ejectedUntil = 0;
    t.consecutiveFailures = 0;
    t.resetLatency();
    this.events.restored(t);
  }

  private failed(t: Target): void {
    this.passes.set(t, 0);
    const n = (this.fails.get(t) ?? 0) + 1;
    this.fails.set(t, n);
    if (n < this.cfg.unhealthy_threshold || !t.activeUp) return;
    t.activeUp = false;
    this.events.ejected(t, 'active', undefined);
  }
}
