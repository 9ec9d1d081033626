import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface QueueCounts {
  readonly waiting: number;
  readonly delayed: number;
  readonly active: number;
  readonly deadLettered: number;
  readonly disabledEndpoints: number;
}

/**
 * sluice-webhooks metrics. The queue gauges are read from Redis at scrape time (one
 * round trip), so every process reports the whole queue, not its share of it.
 */
export class WebhookMetrics {
  readonly registry = new Registry();
  readonly attempts = new Counter({
    name: 'sluice_webhooks_attempts_total', help: 'Delivery attempts by result: ok, retry (failed, will be tried again), final (failed for good).',
    labelNames: ['result'] as const, registers: [this.registry],
  });
  readonly deadLettered = new Counter({
    name: 'sluice_webhooks_dead_lettered_total', help: 'Deliveries moved to the dead letters (attempts used up, a final answer, or a disabled endpoint).',
    labelNames: ['reason'] as const, registers: [this.registry],
  });
  readonly delivered = new Counter({
    name: 'sluice_webhooks_delivered_total', help: 'Deliveries that reached their receiver (2xx).', registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'sluice_webhooks_delivery_latency_seconds', help: 'From due (enqueued, plus its delay) to delivered, retries included.',
    registers: [this.registry], buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200, 36000, 129600],
  });
  readonly attemptDuration = new Histogram({
    name: 'sluice_webhooks_attempt_duration_seconds', help: 'One attempt: connect, send, first byte of the answer.',
    registers: [this.registry], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  });
  readonly attemptsPerDelivery = new Histogram({
    name: 'sluice_webhooks_attempts_per_delivery', help: 'Attempts a finished delivery took (delivered or dead-lettered).',
    labelNames: ['outcome'] as const, registers: [this.registry], buckets: [1, 2, 3, 4, 5, 6, 7, 8, 10, 15, 20],
  });

  constructor(counts: () => Promise<QueueCounts>) {
    collectDefaultMetrics({ register: this.registry, prefix: 'sluice_webhooks_process_' });
    const gauge = (name: string, help: string, pick: (c: QueueCounts) => number): void => {
      new Gauge({ name, help, registers: [this.registry], async collect() { this.set(pick(await counts())); } });
    };
    gauge('sluice_webhooks_queued', 'Deliveries waiting for a worker now (due, not yet started).', (c) => c.waiting);
    gauge('sluice_webhooks_delayed', 'Deliveries waiting for their delay or their next retry.', (c) => c.delayed);
    gauge('sluice_webhooks_active', 'Deliveries being attempted now, by any worker.', (c) => c.active);
    gauge('sluice_webhooks_dead_letters', 'Deliveries in the dead letters now (kept --dead-letter-ttl seconds).', (c) => c.deadLettered);
    gauge('sluice_webhooks_disabled_endpoints', 'Endpoints disabled for failing longer than --disable-after.', (c) => c.disabledEndpoints);
  }
}
