import { Type } from '@sinclair/typebox';
import { Section, StringEnum } from '../../../common/schema-types.js';

export const Target = Section({
  url: Type.String({ description: 'An origin: http(s)://host:port, no path.' }),
  weight: Type.Integer({ minimum: 1, maximum: 10000, default: 1, description: 'Relative share for the weighted balancers (and a cost divisor for the load-aware ones).' }),
  backup: Type.Boolean({ default: false, description: 'Used only while no primary target is available (nginx backup).' }),
  max_fails: Type.Optional(Type.Integer({ minimum: 0, description: 'nginx max_fails: consecutive failures that eject this target (0: never); overrides outlier.consecutive_failures.' })),
  fail_timeout_ms: Type.Optional(Type.Integer({ minimum: 1, description: 'nginx fail_timeout: a fixed ejection time for this target, instead of the growing outlier one.' })),
}, { shorthand: 'url', description: 'A target: its origin, or a mapping with url and the fields to change.' });

export const Health = Section({
  path: Type.String({ pattern: '^/', patternErrorMessage: 'must start with /', default: '/healthz', description: 'Checked with GET; 2xx or 3xx within timeout_ms passes.' }),
  interval_ms: Type.Integer({ minimum: 10, default: 5000, description: 'Time between checks of one target.' }),
  timeout_ms: Type.Optional(Type.Integer({ minimum: 1, description: 'At most interval_ms (default: the smaller of 1000 and interval_ms).' })),
  healthy_threshold: Type.Integer({ minimum: 1, default: 2, description: 'Consecutive passing checks that bring a down (or ejected) target back.' }),
  unhealthy_threshold: Type.Integer({ minimum: 1, default: 3, description: 'Consecutive failing checks that take a target out.' }),
}, { description: 'Active health checks: GET path on every target each interval.' });

export const Outlier = Section({
  consecutive_failures: Type.Integer({ minimum: 0, default: 5, description: '5xx answers or connect/reset/timeout errors in a row that eject a target (0: never).' }),
  base_ejection_ms: Type.Integer({ minimum: 1, default: 30000, description: 'The first ejection lasts this long; the n-th, n times as long (up to max_ejection_ms).' }),
  max_ejection_ms: Type.Optional(Type.Integer({ minimum: 1, description: 'At least base_ejection_ms (default: the larger of 300000 and base_ejection_ms).' })),
  max_ejection_percent: Type.Number({ minimum: 0, maximum: 100, default: 50, description: "Never eject more than this share of the upstream's targets at once." }),
  count_5xx: Type.Boolean({ default: true, description: "5xx answers count as failures; false counts only connect/reset/timeout errors (nginx's max_fails with proxy_next_upstream error timeout)." }),
}, { default: {}, description: 'Passive outlier ejection from the answers real requests get.' });

export const Retry = Section({
  attempts: Type.Integer({ minimum: 0, maximum: 10, default: 2, description: 'Retries on another target after the first try, at most.' }),
  statuses: Type.Array(Type.Integer({ minimum: 500, maximum: 599 }), { default: [502, 503], uniqueItems: true,
    description: "Answer statuses retried on another target (idempotent methods only); [] retries connection failures only (nginx's proxy_next_upstream error timeout)." }),
  budget_percent: Type.Number({ minimum: 0, maximum: 100, default: 20, description: "Retries in any rolling second, as a share of that second's requests." }),
  min_per_second: Type.Number({ minimum: 0, default: 3, description: 'Retries always allowed per second, whatever the share.' }),
  // Each in-flight request may hold a copy this large for its whole exchange; keep the default small.
  max_buffered_body_bytes: Type.Integer({ minimum: 0, maximum: 16 * 1024 * 1024, default: 65536,
    description: 'Request bodies up to this size are kept in memory while they stream, so a retry can replay them.' }),
}, { default: {}, description: "Never more retries in a rolling second than the larger of min_per_second and budget_percent of that second's requests." });

export const Circuit = Section({
  max_connections: Type.Optional(Type.Integer({ minimum: 1, description: "The target's connection pool size (default: the upstream's connections)." })),
  max_pending: Type.Integer({ minimum: 0, default: 0, description: 'Requests waiting for a pool connection (0: no limit).' }),
  max_inflight: Type.Integer({ minimum: 0, default: 0, description: 'Requests sent through this gateway and not finished (0: no limit).' }),
}, { default: {}, description: 'Per-target circuit breaking: a target at a limit is skipped, or the request gets 503 overloaded.' });

export const Discover = Section({
  name: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.-]+$', patternErrorMessage: 'must be letters, digits, _ . - (it is part of a Redis key)',
    description: "The name backends register under (sluice-backend --register-upstream); default: the upstream's name." })),
  poll_interval_ms: Type.Integer({ minimum: 10, maximum: 10_000, default: 250, description: 'The safety-net poll; joins and clean leaves arrive at once over pub/sub.' }),
}, { shorthand: true, description: 'Targets that register themselves in Redis, alongside the static ones (redis store only): true, or a mapping.' });

export const BALANCERS = ['round_robin', 'weighted_round_robin', 'least_outstanding', 'p2c_ewma'] as const;

export const Upstream = Section({
  targets: Type.Array(Target, { default: [], description: 'Where requests go: origins, or mappings with weight, backup, max_fails.' }),
  balancer: StringEnum(BALANCERS, { default: 'p2c_ewma', description: 'How a target is chosen (docs/upstreams.md).' }),
  ewma_decay_ms: Type.Integer({ minimum: 1, default: 10000, description: 'p2c_ewma: how fast a latency sample fades (the EWMA time constant).' }),
  health: Type.Optional(Health),
  outlier: Outlier,
  connections: Type.Integer({ minimum: 1, default: 64, description: 'Keep-alive connections per target (an undici Pool).' }),
  connect_timeout_ms: Type.Integer({ minimum: 1, default: 2000, description: 'Connecting to a target; slower is 504 upstream_timeout (or a retry).' }),
  headers_timeout_ms: Type.Integer({ minimum: 1, default: 30000, description: 'From sending the request to the response head; slower is 504 upstream_timeout.' }),
  body_timeout_ms: Type.Integer({ minimum: 1, default: 30000, description: 'Longest pause between response body chunks.' }),
  retry: Retry,
  circuit: Circuit,
  discover: Type.Optional(Discover),
});
