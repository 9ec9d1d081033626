import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Every metric Sluice exports, in one registry per process. */
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
    name: 'sluice_limit_decisions_total', help: 'Limits-stage decisions by result (allowed, rate_limited, quota_exceeded, concurrency_limited, fallback_open, store_closed).',
    labelNames: ['result'] as const, registers: [this.registry],
  });
  readonly storeDuration = new Histogram({
    name: 'sluice_store_duration_seconds', help: 'Store call latency by operation.',
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
  readonly storeBreakerOpen = new Gauge({
    name: 'sluice_store_breaker_open', help: '1 while the store breaker is open (calls skipped, failure policy applied).',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'sluice_process_' });
  }
}
