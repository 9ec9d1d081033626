import type { Logger } from 'pino';
import type { SluiceConfig } from '../config/types.js';
import { sendError } from '../http/errors.js';
import type { Metrics } from '../observe/metrics.js';
import type { Stage } from '../pipeline/context.js';
import { loopDelayMonitor, OverloadDetector } from './overload.js';

/**
 * shed: priority load shedding after Stripe's fleet load shedder. While the process is
 * overloaded (overload.ts), requests of the lowest priority tiers get 503 `overloaded`
 * with Retry-After, so the capacity left goes to the plans that matter most; the highest
 * plan priority in the config is never shed.
 *
 * It sits after auth, because the priority is the plan's, and before every stage that
 * calls the store (customer-keyed limit_req/limit_conn, limits): a shed request costs
 * one comparison and its error response, never a round trip.
 */
export interface LoadShedder {
  readonly stage: Stage;
  /** Stops the sampling timer and the loop-delay histogram (the generation is retired). */
  stop(): void;
}

const MESSAGE = 'the gateway is overloaded and is serving higher-priority plans first; retry after the Retry-After delay';

/** `inflight` reads the requests this process has open (the one being decided included). */
export function loadShedder(cfg: SluiceConfig, metrics: Metrics, log: Logger, inflight: () => number): LoadShedder {
  const s = cfg.shed;
  metrics.overloadLevel.set(0);
  if (s.max_inflight === 0 && s.max_event_loop_delay_ms === 0) return { stage: () => true, stop() {} };

  const priorities = [...new Set([...cfg.plans.values()].map((p) => p.priority))].sort((a, b) => a - b);
  // Tier 0 is public routes; plan priorities follow from the lowest. The top one is not
  // sheddable, so there are as many sheddable tiers as distinct priorities.
  const tierOf = new Map(priorities.map((p, i) => [p, i + 1]));
  const publicShed = metrics.shedRequests.labels('(public)', 'public');
  const planShed = new Map([...cfg.plans.values()].map((p) => [p.name, metrics.shedRequests.labels(p.name, String(p.priority))]));
  const retryAfter = ['retry-after', String(s.retry_after_s)];

  const monitor = s.max_event_loop_delay_ms > 0 ? loopDelayMonitor() : undefined;
  const detector = new OverloadDetector(s, priorities.length, inflight, monitor?.read ?? (() => 0), (level, ratio) => {
    metrics.overloadLevel.set(level);
    const r = Math.round(ratio * 100) / 100;
    if (level === 0) log.info({ overload_ratio: r }, 'overload over: shedding stopped');
    else log.warn({ shed_level: level, overload_ratio: r, public_shed: true, serving_min_priority: priorities[level - 1] }, 'overloaded: shedding lower priorities');
  });
  const timer = setInterval(() => detector.sample(), s.sample_interval_ms);
  // Sampling must never be what keeps a draining process alive.
  timer.unref();

  return {
    stage: (ctx) => {
      detector.observe(inflight());
      const level = detector.level;
      if (level === 0) return true;
      const id = ctx.identity;
      const tier = id === undefined ? 0 : tierOf.get(id.plan.priority) ?? 0;
      if (tier >= level) return true;
      (id === undefined ? publicShed : planShed.get(id.plan.name))?.inc();
      return sendError(ctx, 503, 'overloaded', MESSAGE, retryAfter);
    },
    stop() {
      clearInterval(timer);
      monitor?.stop();
    },
  };
}
