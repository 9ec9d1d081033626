import type { StoreConfig } from '../../common/store-config.js';
import type { MasterKeys } from '../../common/webhook-keys/master-key.js';
import { masterKeys } from '../service/config.js';
import { createHash } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import type { AdminToken } from '../../common/admin/tokens.js';
import { IntFlag, ListFlag, StringFlag, parseFlags, storeFromFlags, usageOf } from '../service/flags.js';
import { DEFAULT_SCHEDULE_MS } from './schedule.js';

/** `sluice-webhooks` settings, in sluice-backend's style: flags and SLUICE_WEBHOOKS_* variables. */
export interface WebhooksConfig {
  readonly store: StoreConfig;
  /** Customers' webhook keys are read from the queue's Redis (the gateways' store), sealed under these. */
  readonly master: MasterKeys;
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
  /** SLUICE_WEBHOOKS_ADMIN_TOKEN (label `admin`, hashed here) and SLUICE_WEBHOOKS_ADMIN_TOKENS; empty: /admin/* is off. */
  readonly adminTokens: readonly AdminToken[];
  readonly adminMaxAuthFailures: number;
  readonly auditRetentionDays: number;
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
  'admin-max-auth-failures': IntFlag(1, 1_000_000, 'Wrong admin tokens one address may send in a minute before it must back off (1 s, doubling, up to a minute; 429 meanwhile).', { default: 10 }),
  'audit-retention-days': IntFlag(1, 3650, 'Days admin changes (replays, deletions) are kept in the audit log, which the gateways on this Redis share.', { default: 90 }),
  'log-level': StringFlag('pino level.', { default: 'info' }),
}, { additionalProperties: false });

export function parseWebhooksConfig(argv: readonly string[], env: NodeJS.ProcessEnv): WebhooksConfig {
  const v = parseFlags(FLAGS, ENV_PREFIX, argv, env);
  const f = v.values;
  const store = storeFromFlags(v, 'redis', 'store', undefined);
  if (store === undefined && f.redis === undefined && f.store === undefined) v.problem(`${v.where('redis')} or ${v.where('store')}: one is required (the queue to deliver from)`);
  const master = masterKeys(env, v);
  if (master === undefined && (env.SLUICE_MASTER_KEY ?? '') === '') v.problem('SLUICE_MASTER_KEY: required (the gateways\' master key: customers\' webhook keys are sealed under it)');
  const steps = f['retry-schedule-ms'];
  if (steps.length > MAX_STEPS || steps.some((s) => !/^\d{1,9}$/.test(s) || Number(s) < 1)) {
    v.need('retry-schedule-ms', `1 to ${MAX_STEPS} whole numbers of ms (1..999999999), comma-separated`);
  }
  const adminTokens = adminTokensFrom(env, v);
  v.finish();
  return {
    store: store!,
    master: master!,
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
    adminTokens,
    adminMaxAuthFailures: f['admin-max-auth-failures'],
    auditRetentionDays: f['audit-retention-days'],
    logLevel: f['log-level'],
  };
}

const LABELLED = /^([A-Za-z0-9][A-Za-z0-9._@-]{0,63})=([0-9a-f]{64})$/;

/** The plain SLUICE_WEBHOOKS_ADMIN_TOKEN (hashed at once) and the `label=sha256hex,...` pairs of SLUICE_WEBHOOKS_ADMIN_TOKENS. */
function adminTokensFrom(env: NodeJS.ProcessEnv, v: { problem(m: string): void }): AdminToken[] {
  const out: AdminToken[] = [];
  const single = env.SLUICE_WEBHOOKS_ADMIN_TOKEN ?? '';
  if (single !== '' && single.length < 16) v.problem('SLUICE_WEBHOOKS_ADMIN_TOKEN: at least 16 characters');
  else if (single !== '') out.push({ label: 'admin', digest: createHash('sha256').update(single).digest('hex') });
  for (const pair of (env.SLUICE_WEBHOOKS_ADMIN_TOKENS ?? '').split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const m = LABELLED.exec(pair);
    if (m === null) { v.problem('SLUICE_WEBHOOKS_ADMIN_TOKENS: each entry is label=<sha256 hex of the token>, comma-separated'); continue; }
    if (out.some((t) => t.label === m[1])) v.problem(`SLUICE_WEBHOOKS_ADMIN_TOKENS: label ${m[1]} is used twice (SLUICE_WEBHOOKS_ADMIN_TOKEN is "admin")`);
    out.push({ label: m[1]!, digest: m[2]! });
  }
  return out;
}

export function usage(): string {
  return usageOf('sluice-webhooks --redis URL | --store FILE [flags]   (SLUICE_MASTER_KEY in the environment)', FLAGS, ENV_PREFIX);
}
