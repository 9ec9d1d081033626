import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PoolLoad } from './pool.js';
import type { ResultsAudit } from './results-store.js';

type CounterChild = ReturnType<Counter<string>['labels']>;

/**
 * The image backend's metrics, one registry per service. The load gauges are read from
 * the pool at scrape time, so they can never drift from what the pool really holds.
 */
export class BackendMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'sluice_backend_requests_total', help: 'Requests answered, by endpoint and status.',
    labelNames: ['endpoint', 'status'] as const, registers: [this.registry],
  });
  readonly processing = new Histogram({
    name: 'sluice_backend_processing_seconds', help: 'Time a job held a processing slot (decode, transform, encode, detect), by endpoint.',
    labelNames: ['endpoint'] as const, registers: [this.registry],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  });
  readonly duration = new Histogram({
    name: 'sluice_backend_request_duration_seconds', help: 'Time from request to response, queueing and body upload included, by endpoint.',
    labelNames: ['endpoint'] as const, registers: [this.registry],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  });
  readonly rejected = new Counter({
    name: 'sluice_backend_overloaded_total', help: 'Requests refused with 503 overloaded (pool and queue full, or queue wait timed out).',
    registers: [this.registry],
  });
  readonly resultsExpired = new Counter({
    name: 'sluice_backend_results_expired_total', help: 'Stored results deleted by the sweeper after their TTL.',
    registers: [this.registry],
  });
  readonly lastSweep = new Gauge({
    name: 'sluice_backend_results_last_sweep_timestamp_seconds', help: 'When the results sweeper last finished a pass (Unix seconds); a stalled sweeper stops moving it.',
    registers: [this.registry],
  });
  readonly webhooks = new Counter({
    name: 'sluice_backend_webhooks_total', help: 'Webhooks by outcome: delivered or failed (in-process delivery), enqueued or dropped (not enqueued; --webhook-redis).',
    labelNames: ['outcome'] as const, registers: [this.registry],
  });
  private readonly requestChildren = new Map<string, CounterChild>();

  constructor(load: () => PoolLoad) {
    collectDefaultMetrics({ register: this.registry, prefix: 'sluice_backend_process_' });
    new Gauge({
      name: 'sluice_backend_inflight', help: 'Jobs holding a processing slot now.', registers: [this.registry],
      collect() { this.set(load().inflight); },
    });
    new Gauge({
      name: 'sluice_backend_queued', help: 'Requests admitted but not processing (reading the body, fetching, waiting for a slot).',
      registers: [this.registry], collect() { this.set(load().queued); },
    });
    new Gauge({
      name: 'sluice_backend_capacity', help: 'Requests admitted before the backend sheds load (concurrency + queue).',
      registers: [this.registry], collect() { this.set(load().capacity); },
    });
  }

  /** The GDPR audit gauges: deletion is visibly working when expired-not-deleted stays near 0 and the oldest age under the TTL. */
  watchResults(audit: () => ResultsAudit): void {
    new Gauge({
      name: 'sluice_backend_results_oldest_age_seconds', help: 'Age of the oldest stored result not yet expired (as of the last sweep and this process\'s writes since).',
      registers: [this.registry], collect() { this.set(audit().oldestLiveAgeSeconds); },
    });
    new Gauge({
      name: 'sluice_backend_results_expired_not_deleted', help: 'Stored results past their TTL not deleted yet (never served: expiry is checked on read).',
      registers: [this.registry], collect() { this.set(audit().expiredNotDeleted); },
    });
  }

  requestDone(endpoint: string, status: number, seconds: number): void {
    const key = `${endpoint}\u0000${status}`;
    let c = this.requestChildren.get(key);
    if (c === undefined) {
      c = this.requests.labels(endpoint, String(status));
      this.requestChildren.set(key, c);
    }
    c.inc();
    this.duration.labels(endpoint).observe(seconds);
  }
}
