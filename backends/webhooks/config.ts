import type { StoreConfig } from '../../common/store-config.js';
import type { WebhookKeys } from '../net/webhook-signing.js';
import { webhookKeys } from '../service/config.js';
import { Type } from '@sinclair/typebox';
import { IntFlag, ListFlag, StringFlag, parseFlags, storeFromFlags, usageOf } from '../service/flags.js';
import { DEFAULT_SCHEDULE_MS } from './schedule.js';

/** `sluice-webhooks` settings, in sluice-backend's style: flags and SLUICE_WEBHOOKS_* variables. */
export interface WebhooksConfig {
  readonly store: StoreConfig;
  readonly keys: WebhookKeys;
  readonly concurrency: number;
  readonly timeoutMs: number;
  readonly schedule: readonly number[];
  readonly deadLetterTtlSeconds: number;
  readonly disableAfterMs: number;
  readonly lockMs: number;
  readonly stalledIntervalMs: number;
  readonly maxStalled: number;
  readonly drainMs: number;
  readonly allow: readonly string[];
  readonly adminHost: string;
  readonly adminPort: number;
  readonly adminToken: string | undefined;
  readonly logLevel: string;
}

export const ENV_PREFIX = 'SLUICE_WEBHOOKS_';
// A schedule longer than this is a typo; BullMQ's own bound (queue.ts) is far above it.
const MAX_STEPS = 50;

export const FLAGS = Type.Object({
  redis: Type.Optional(StringFlag('redis:// URL of the queue (`sluice-backend --webhook-redis` points at the same one).')),
  store: Type.Optional(StringFlag('A gateway config file: the queue is in the Redis of its `store` section (standalone, Sentinel or Cluster, password, TLS, prefix). Instead of `--redis`.')),
  concurrency: IntFlag(1, 1024, 'Deliveries attempted at once by this process.', { default: 16 }),
  'timeout-ms': IntFlag(100, 600_000, 'Timeout of one attempt (connect to answer headers).', { default: 15000 }),
  'retry-schedule-ms': ListFlag(`Waits before each retry, in ms, each jittered by ±20%; attempts = steps + 1 (at most ${MAX_STEPS} steps). Default ${DEFAULT_SCHEDULE_MS.join(',')}.`),
  'dead-letter-ttl': IntFlag(60, 90 * 86400, 'Seconds a dead letter is kept for replay (a week by default).', { default: 604800 }),
  'disable-after': IntFlag(1, 90 * 86400, 'Seconds an endpoint may keep failing (no success in between) before it is disabled (5 days by default).', { default: 432000 }),
  'lock-ms': IntFlag(1000, 600_000, 'Lock of a delivery in flight, renewed every half of it; a dead process\'s deliveries are redelivered once it runs out.', { default: 10000 }),
  'stalled-interval-ms': IntFlag(500, 600_000, 'How often this process looks for deliveries whose process died.', { default: 5000 }),
  'max-stalled': IntFlag(1, 1000, 'Times a delivery may be found stalled (its process died) before it is dead-lettered.', { default: 10 }),
  'drain-ms': IntFlag(0, 600_000, 'On SIGTERM, how long deliveries in flight get to finish.', { default: 30000 }),
  allow: ListFlag('Comma-separated addresses/CIDRs webhooks may reach although private or loopback (tests: 127.0.0.1). Default none.'),
  'admin-host': StringFlag('Address of the admin listener (/metrics, /healthz, /admin/*).', { default: '127.0.0.1' }),
  'admin-port': IntFlag(0, 65535, 'Port of the admin listener (0 = any free port).', { default: 9091 }),
  'log-level': StringFlag('pino level.', { default: 'info' }),
}, { additionalProperties: false });

export function parseWebhooksConfig(argv: readonly string[], env: NodeJS.ProcessEnv): WebhooksConfig {
  const v = parseFlags(FLAGS, ENV_PREFIX, argv, env);
  const f = v.values;
  const store = storeFromFlags(v, 'redis', 'store', undefined);
  if (store === undefined && f.redis === undefined && f.store === undefined) v.problem(`${v.where('redis')} or ${v.where('store')}: one is required (the queue to deliver from)`);
  const keys = webhookKeys(env, v);
  if (keys === undefined && (env.SLUICE_WEBHOOK_SECRET ?? '') === '') v.problem('SLUICE_WEBHOOK_SECRET: required (whsec_<base64>; two, space-separated, while rotating)');
  const steps = f['retry-schedule-ms'];
  if (steps.length > MAX_STEPS || steps.some((s) => !/^\d{1,9}$/.test(s) || Number(s) < 1)) {
    v.need('retry-schedule-ms', `1 to ${MAX_STEPS} whole numbers of ms (1..999999999), comma-separated`);
  }
  const adminToken = env.SLUICE_WEBHOOKS_ADMIN_TOKEN;
  if (adminToken !== undefined && adminToken !== '' && adminToken.length < 16) v.problem('SLUICE_WEBHOOKS_ADMIN_TOKEN: at least 16 characters');
  v.finish();
  return {
    store: store!,
    keys: keys!,
    concurrency: f.concurrency,
    timeoutMs: f['timeout-ms'],
    schedule: steps.length > 0 ? steps.map(Number) : DEFAULT_SCHEDULE_MS,
    deadLetterTtlSeconds: f['dead-letter-ttl'],
    disableAfterMs: f['disable-after'] * 1000,
    lockMs: f['lock-ms'],
    stalledIntervalMs: f['stalled-interval-ms'],
    maxStalled: f['max-stalled'],
    drainMs: f['drain-ms'],
    allow: f.allow,
    adminHost: f['admin-host'],
    adminPort: f['admin-port'],
    adminToken: adminToken === '' ? undefined : adminToken,
    logLevel: f['log-level'],
  };
}

export function usage(): string {
  return usageOf('sluice-webhooks --redis URL | --store FILE [flags]   (SLUICE_WEBHOOK_SECRET in the environment)', FLAGS, ENV_PREFIX);
}
