import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

type CounterChild = ReturnType<Counter<string>['labels']>;
type HistogramChild = ReturnType<Histogram<string>['labels']>;

/**
 * One cached label child per distinct label values: prom-client hashes a label object on
 * every call, which is measurable at tens of thousands of requests a second.
 */
export function labelChildren<C>(make: (...values: string[]) => C): (...values: string[]) => C {
  const children = new Map<string, C>();
  return (...values) => {
    const key = values.join('\u0000');
    let c = children.get(key);
    if (c === undefined) {
      c = make(...values);
      children.set(key, c);
    }
    return c;
  };
}

/**
 * Every metric Sluice exports, in one registry per process. The per-request ones are
 * reached through cached label children: prom-client hashes a label object on every
 * call, which is measurable at tens of thousands of requests a second.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'sluice_requests_total', help: 'Requests answered, by route, status and plan.',
    labelNames: ['route', 'status', 'plan'] as const, registers: [this.registry],
  });
  readonly duration = new Histogram({
    name: 'sluice_request_duration_seconds', help: 'Time from request to the end of the response, by route.',
    labelNames: ['route'] as const, registers: [this.registry],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  });
  readonly limitDecisions = new Counter({
    name: 'sluice_limit_decisions_total', help: 'Limits-stage decisions by result (allowed, rate_limited, quota_exceeded, concurrency_limited, fallback_open, store_closed, shadow).',
    labelNames: ['result'] as const, registers: [this.registry],
  });
  readonly storeDuration = new Histogram({
    name: 'sluice_store_duration_seconds', help: 'Store call latency by operation (calls that answered).',
    labelNames: ['op'] as const, registers: [this.registry],
    buckets: [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
  });
  readonly storeErrors = new Counter({
    name: 'sluice_store_errors_total', help: 'Store calls that failed or timed out, by operation and kind.',
    labelNames: ['op', 'kind'] as const, registers: [this.registry],
  });
  readonly upstreamErrors = new Counter({
    name: 'sluice_upstream_errors_total', help: 'Upstream failures by upstream and kind (connect, timeout, reset, protocol).',
    labelNames: ['upstream', 'kind'] as const, registers: [this.registry],
  });
  readonly upstreamEjections = new Counter({
    name: 'sluice_upstream_ejections_total',
    help: 'Upstream targets taken out of rotation, by upstream, target and source (outlier: passive ejection; active: failed health checks).',
    labelNames: ['upstream', 'target', 'source'] as const, registers: [this.registry],
  });
  readonly upstreamRetries = new Counter({
    name: 'sluice_upstream_retries_total', help: 'Requests sent again to another target, by upstream and reason (connect, reset, status_502, status_503).',
    labelNames: ['upstream', 'reason'] as const, registers: [this.registry],
  });
  readonly upstreamRetriesRefused = new Counter({
    name: 'sluice_upstream_retries_refused_total', help: 'Retries that the rules allowed but the retry budget refused, by upstream.',
    labelNames: ['upstream'] as const, registers: [this.registry],
  });
  readonly upstreamBreakerRejections = new Counter({
    name: 'sluice_upstream_breaker_rejections_total',
    help: 'Requests answered 503 overloaded because every target was at its circuit-breaker limits, by upstream.',
    labelNames: ['upstream'] as const, registers: [this.registry],
  });
  /** Filled in at scrape time from the pools (watchTargets), so it is never stale. */
  readonly upstreamTargetHealthy: Gauge<'upstream' | 'target'> = new Gauge({
    name: 'sluice_upstream_target_healthy',
    help: '1 while an upstream target takes traffic, 0 while it is ejected or failing its health checks.',
    labelNames: ['upstream', 'target'] as const, registers: [this.registry],
    collect: () => {
      for (const h of this.targetHealth()) this.upstreamTargetHealthy.set({ upstream: h.upstream, target: h.target }, h.up ? 1 : 0);
    },
  });
  private targetHealth: () => readonly { upstream: string; target: string; up: boolean }[] = () => [];
  readonly storeBreakerOpen = new Gauge({
    name: 'sluice_store_breaker_open', help: '1 while the store breaker is open (calls skipped, failure policy applied).',
    registers: [this.registry],
  });
  readonly storeInstances = new Gauge({
    name: 'sluice_store_instances',
    help: 'Gateway processes sharing the store as of the last heartbeat (0: not counted yet).',
    // Every worker sees the same fleet; summed across a cluster's workers it would count each N times.
    aggregator: 'max',
    registers: [this.registry],
  });
  readonly storeFleetDivisor = new Gauge({
    name: 'sluice_store_fleet_divisor',
    help: 'Gateways a fail-open fallback assumes share each limit (it gets 1/this): at least store.fleet_floor until the fleet is counted.',
    aggregator: 'max',
    registers: [this.registry],
  });
  readonly leaseHits = new Counter({
    name: 'sluice_limit_lease_hits_total',
    help: 'Requests admitted from a token lease this gateway held, without a store call.',
    registers: [this.registry],
  });
  readonly leaseGrants = new Counter({
    name: 'sluice_limit_lease_grants_total',
    help: 'Token leases taken: store calls that took a batch of more than one unit.',
    registers: [this.registry],
  });
  readonly leaseReturned = new Counter({
    name: 'sluice_limit_lease_returned_units_total',
    help: 'Units of expired token leases given back to the store unused.',
    registers: [this.registry],
  });
  readonly leaseHeld: Gauge = new Gauge({
    name: 'sluice_limit_lease_held_units',
    help: 'Units held in this gateway\'s token leases right now (taken from the shared bucket, not yet used).',
    registers: [this.registry],
    collect: () => { this.leaseHeld.set(this.heldLeaseUnits()); },
  });
  private heldLeaseUnits: () => number = () => 0;
  readonly storeLateReplies = new Counter({
    name: 'sluice_store_late_replies_total',
    help: 'Store calls that answered after the deadline had handed the request to the failure policy, by operation and cause (loop_lag: this gateway\'s timers ran late; store_slow: they did not).',
    labelNames: ['op', 'cause'] as const, registers: [this.registry],
  });
  readonly storeLateUndone = new Counter({
    name: 'sluice_store_late_undone_total',
    help: 'Late store answers that had taken units for a request the failure policy had already decided, given back (reconciled), by operation.',
    labelNames: ['op'] as const, registers: [this.registry],
  });
  /** The shed stage takes one child per plan when it is built, so a shed request only increments. */
  readonly shedRequests = new Counter({
    name: 'sluice_shed_total',
    help: 'Requests shed with 503 overloaded, by plan and priority (plan "(public)", priority "public" for routes without auth).',
    labelNames: ['plan', 'priority'] as const, registers: [this.registry],
  });
  readonly overloadLevel = new Gauge({
    name: 'sluice_overload_level',
    help: 'Priority tiers being shed right now (0: none; tier 1 is public routes, then plan priorities from the lowest; the highest is never shed).',
    // A cluster's workers shed on their own; the worst one is what an operator needs to see.
    aggregator: 'max',
    registers: [this.registry],
  });
  readonly limitShadowRejections = new Counter({
    name: 'sluice_limit_shadow_rejections_total',
    help: 'Requests a shadow plan let through that its limits would have refused, by plan and reason.',
    labelNames: ['plan', 'reason'] as const, registers: [this.registry],
  });
  readonly limitNear = new Counter({
    name: 'sluice_limit_near_total',
    help: 'Admitted requests that left less than 20% of a limit (rate, day, month, inflight), by plan and limit.',
    labelNames: ['plan', 'limit'] as const, registers: [this.registry],
  });
  /** Filled in at scrape time (watchNearSubjects); no per-customer label, only a count per plan. */
  readonly limitNearSubjects: Gauge<'plan'> = new Gauge({
    name: 'sluice_limit_near_subjects',
    help: 'Distinct subjects (customers or keys) that used more than 80% of a limit in the last minute, by plan (tracked subjects are capped).',
    labelNames: ['plan'] as const, registers: [this.registry],
    collect: () => {
      this.limitNearSubjects.reset();
      for (const [plan, n] of this.nearSubjects()) this.limitNearSubjects.set({ plan }, n);
    },
  });
  private nearSubjects: () => ReadonlyMap<string, number> = () => new Map();
  readonly limitDenyCacheHits = new Counter({
    name: 'sluice_limit_deny_cache_hits_total',
    help: 'Requests refused from this process\'s memory of a standing denial, without a store call.',
    registers: [this.registry],
  });
  readonly tlsHandshakeErrors = new Counter({
    name: 'sluice_tls_handshake_errors_total',
    help: 'TLS handshakes that failed, by listener and reason (the OpenSSL or Node error code: an old protocol refused, no shared cipher, a handshake timeout, a reset).',
    labelNames: ['listener', 'reason'] as const, registers: [this.registry],
  });
  readonly tunnelsOpen = new Gauge({
    name: 'sluice_upgrade_tunnels_open', help: 'Upgrade tunnels (WebSockets) open now.', registers: [this.registry],
  });
  readonly tunnels = new Counter({
    name: 'sluice_upgrade_tunnels_total', help: 'Upgrade tunnels (WebSockets) opened, by route.',
    labelNames: ['route'] as const, registers: [this.registry],
  });
  readonly tunnelBytes = new Counter({
    name: 'sluice_upgrade_bytes_total', help: 'Bytes carried by closed upgrade tunnels, by route and direction (in: client to upstream).',
    labelNames: ['route', 'direction'] as const, registers: [this.registry],
  });
  /**
   * How long requests waited on the store for their limit decision, timeouts included
   * (sluice_store_duration_seconds has only the calls that answered). Buckets sit around
   * the configured timeout so "nobody waited past timeout + 20 ms" is one query.
   */
  readonly decisionWait: Histogram<'source'>;

  private readonly requestChild = labelChildren((...v): CounterChild => this.requests.labels(...v));
  private readonly durationChild = labelChildren((...v): HistogramChild => this.duration.labels(...v));
  private readonly decisionChild = labelChildren((...v): CounterChild => this.limitDecisions.labels(...v));
  private readonly storeAdmitDuration: HistogramChild;
  private readonly decisionWaitStore: HistogramChild;

  /** Buckets fall on the store timeout (and timeout + late grace) plus a little, so "within the deadline" is one bucket. */
  constructor(storeTimeoutMs: number, lateGraceMs = 0) {
    collectDefaultMetrics({ register: this.registry, prefix: 'sluice_process_' });
    const aroundTimeout = [0, 5, 10, 20, 50, lateGraceMs, lateGraceMs + 20].map((extra) => (storeTimeoutMs + extra) / 1000);
    this.decisionWait = new Histogram({
      name: 'sluice_limit_decision_seconds',
      help: 'Time a request waited on the store for its limit decision, timeouts included, by source (store, fallback, closed).',
      labelNames: ['source'] as const,
      registers: [this.registry],
      buckets: [...new Set([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, ...aroundTimeout, 0.25, 1, 2.5])].sort((a, b) => a - b),
    });
    this.storeAdmitDuration = this.storeDuration.labels('admit');
    this.decisionWaitStore = this.decisionWait.labels('store');
  }

  requestDone(route: string, status: number, plan: string, seconds: number): void {
    this.requestChild(route, String(status), plan).inc();
    this.durationChild(route).observe(seconds);
  }

  breakerRejected(upstream: string): void {
    this.upstreamBreakerRejections.inc({ upstream });
  }

  /** Where the health gauge reads the targets' state from. */
  watchTargets(read: () => readonly { upstream: string; target: string; up: boolean }[]): void {
    this.targetHealth = read;
  }

  /** Where the lease gauge reads the units held from. */
  watchLeases(read: () => number): void {
    this.heldLeaseUnits = read;
  }

  /** Where the near-limit gauge reads its per-plan counts from. */
  watchNearSubjects(read: () => ReadonlyMap<string, number>): void {
    this.nearSubjects = read;
  }

  limitDecision(result: string): void {
    this.decisionChild(result).inc();
  }

  /** A limit decision the store answered in time. */
  storeAdmitted(seconds: number): void {
    this.storeAdmitDuration.observe(seconds);
    this.decisionWaitStore.observe(seconds);
  }
}
