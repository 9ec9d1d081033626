import type { StoreConfig } from '../../gateway/config/types.js';
import type { WebhookKeys } from '../net/webhook-signing.js';
import { webhookKeys } from '../service/config.js';
import { ConfigError, parseFlags, storeFromFlags, usageOf, type Spec } from '../service/flags.js';
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

const ENV_PREFIX = 'SLUICE_WEBHOOKS_';
// A schedule longer than this is a typo; BullMQ's own bound (queue.ts) is far above it.
const MAX_STEPS = 50;

export const FLAGS: readonly Spec[] = [
  { flag: 'redis', kind: 'string', help: 'redis:// URL of the queue (sluice-backend --webhook-redis points at the same one).' },
  { flag: 'store', kind: 'string', help: 'A gateway config file: the queue is in the Redis of its store section (standalone, Sentinel or Cluster, password, TLS, prefix). Instead of --redis.' },
  { flag: 'concurrency', kind: 'int', min: 1, max: 1024, help: 'Deliveries attempted at once by this process. Default 16.' },
  { flag: 'timeout-ms', kind: 'int', min: 100, max: 600_000, help: 'Timeout of one attempt (connect to answer headers). Default 15000.' },
  { flag: 'retry-schedule-ms', kind: 'list', help: `Waits before each retry, in ms, each jittered by ±20%; attempts = steps + 1. Default ${DEFAULT_SCHEDULE_MS.join(',')} (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h).` },
  { flag: 'dead-letter-ttl', kind: 'int', min: 60, max: 90 * 86400, help: 'Seconds a dead letter is kept for replay. Default 604800 (7 days).' },
  { flag: 'disable-after', kind: 'int', min: 1, max: 90 * 86400, help: 'Seconds an endpoint may keep failing (no success in between) before it is disabled. Default 432000 (5 days).' },
  { flag: 'lock-ms', kind: 'int', min: 1000, max: 600_000, help: 'Lock of a delivery in flight, renewed every half of it; a dead process\'s deliveries are redelivered once it runs out. Default 10000.' },
  { flag: 'stalled-interval-ms', kind: 'int', min: 500, max: 600_000, help: 'How often this process looks for deliveries whose process died. Default 5000.' },
  { flag: 'max-stalled', kind: 'int', min: 1, max: 1000, help: 'Times a delivery may be found stalled (its process died) before it is dead-lettered. Default 10.' },
  { flag: 'drain-ms', kind: 'int', min: 0, max: 600_000, help: 'On SIGTERM, how long deliveries in flight get to finish. Default 30000.' },
  { flag: 'allow', kind: 'list', help: 'Comma-separated addresses/CIDRs webhooks may reach although private or loopback (tests: 127.0.0.1). Default none.' },
  { flag: 'admin-host', kind: 'string', help: 'Address of the admin listener (/metrics, /healthz, /admin/*). Default 127.0.0.1.' },
  { flag: 'admin-port', kind: 'int', min: 0, max: 65535, help: 'Port of the admin listener (0 = any free port). Default 9091.' },
  { flag: 'log-level', kind: 'string', help: 'pino level. Default info.' },
];

export function parseWebhooksConfig(argv: readonly string[], env: NodeJS.ProcessEnv): WebhooksConfig {
  const v = parseFlags(FLAGS, ENV_PREFIX, argv, env);
  const store = storeFromFlags(v, 'redis', 'store', undefined);
  if (store === undefined) throw new ConfigError(`${v.where('redis')} or ${v.where('store')}: one is required (the queue to deliver from)`);
  const keys = webhookKeys(env);
  if (keys === undefined) throw new ConfigError('SLUICE_WEBHOOK_SECRET: required (whsec_<base64>; two, space-separated, while rotating)');
  const steps = v.list('retry-schedule-ms');
  let schedule = DEFAULT_SCHEDULE_MS;
  if (steps.length > 0) {
    if (steps.length > MAX_STEPS || steps.some((s) => !/^\d{1,9}$/.test(s) || Number(s) < 1)) {
      throw new ConfigError(`${v.where('retry-schedule-ms')}: 1 to ${MAX_STEPS} whole numbers of ms (1..999999999), comma-separated`);
    }
    schedule = steps.map(Number);
  }
  const adminToken = env.SLUICE_WEBHOOKS_ADMIN_TOKEN;
  if (adminToken !== undefined && adminToken !== '' && adminToken.length < 16) {
    throw new ConfigError('SLUICE_WEBHOOKS_ADMIN_TOKEN: at least 16 characters');
  }
  return {
    store,
    keys,
    concurrency: v.int('concurrency', 16),
    timeoutMs: v.int('timeout-ms', 15_000),
    schedule,
    deadLetterTtlSeconds: v.int('dead-letter-ttl', 7 * 86400),
    disableAfterMs: v.int('disable-after', 5 * 86400) * 1000,
    lockMs: v.int('lock-ms', 10_000),
    stalledIntervalMs: v.int('stalled-interval-ms', 5000),
    maxStalled: v.int('max-stalled', 10),
    drainMs: v.int('drain-ms', 30_000),
    allow: v.list('allow'),
    adminHost: v.str('admin-host') ?? '127.0.0.1',
    adminPort: v.int('admin-port', 9091),
    adminToken: adminToken === '' ? undefined : adminToken,
    logLevel: v.str('log-level') ?? 'info',
  };
}

export function usage(): string {
  return usageOf('sluice-webhooks --redis URL | --store FILE [flags]   (SLUICE_WEBHOOK_SECRET in the environment)', FLAGS, ENV_PREFIX);
}
