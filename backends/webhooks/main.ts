import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { describeStore } from '../../common/redis-client.js';
import { WebhookKeyring } from '../../common/webhook-keys/keyring.js';
import { RedisKeyringStorage } from '../../common/webhook-keys/storage.js';
import { RedisAuditLog } from '../../common/admin/audit-log.js';
import { AuthThrottle, DEFAULT_THROTTLE } from '../../common/admin/throttle.js';
import { AdminTokens } from '../../common/admin/tokens.js';
import { createWebhookAdmin } from './admin.js';
import type { WebhooksConfig } from './config.js';
import { createEndpointHealth } from './endpoints.js';
import { WebhookMetrics } from './metrics.js';
import { queueConnection, queuePrefix } from './queue.js';
import { startDeliveryWorker } from './worker.js';

// Dead letters past their TTL are removed by BullMQ only when another job fails; this
// sweep removes them on time even when nothing fails.
const DEAD_LETTER_SWEEP_MS = 60_000;
const SWEEP_BATCH = 1000;

/** Runs sluice-webhooks until SIGINT/SIGTERM, which drains: deliveries in flight finish, the rest stay queued. */
export async function runWebhooks(cfg: WebhooksConfig): Promise<void> {
  const log = pino({ level: cfg.logLevel, base: { pid: process.pid, component: 'webhooks' } });
  const connection = queueConnection(cfg.store);
  connection.on('error', () => {});
  const prefix = queuePrefix(cfg.store);
  const longestStep = Math.max(...cfg.schedule);
  const endpoints = createEndpointHealth(connection, prefix, cfg.disableAfterMs, Math.max(cfg.deadLetterTtlSeconds * 1000, 2 * longestStep));
  // Read at scrape time only, when `delivery` exists.
  const metrics = new WebhookMetrics(() => delivery.counts());
  // The gateways keep customers' keys in this Redis, under their store prefix.
  const keyring = new WebhookKeyring(new RedisKeyringStorage(connection, cfg.store.prefix), cfg.master);
  const delivery = startDeliveryWorker({
    connection, prefix, signingKeys: (customer) => keyring.signingKeys(customer), timeoutMs: cfg.timeoutMs, allow: cfg.allow, schedule: cfg.schedule,
    concurrency: cfg.concurrency, lockMs: cfg.lockMs, stalledIntervalMs: cfg.stalledIntervalMs, maxStalled: cfg.maxStalled,
    deadLetterTtlSeconds: cfg.deadLetterTtlSeconds, endpoints, metrics, log,
  });
  const audit = new RedisAuditLog(connection, `${cfg.store.prefix}audit`, cfg.auditRetentionDays * 86_400_000);
  const admin = createWebhookAdmin({ queue: delivery.queue, endpoints, metrics, audit, log }, {
    tokens: cfg.adminTokens.length === 0 ? undefined : new AdminTokens(cfg.adminTokens),
    throttle: new AuthThrottle({ ...DEFAULT_THROTTLE, maxFailures: cfg.adminMaxAuthFailures }),
  });
  await new Promise<void>((resolve, reject) => {
    admin.once('error', reject);
    admin.listen(cfg.adminPort, cfg.adminHost, () => { admin.off('error', reject); resolve(); });
  });
  const sweep = setInterval(() => {
    void delivery.queue.clean(cfg.deadLetterTtlSeconds * 1000, SWEEP_BATCH, 'failed').catch(() => {});
  }, DEAD_LETTER_SWEEP_MS);
  sweep.unref();
  await delivery.worker.waitUntilReady();
  log.info({
    redis: describeStore(cfg.store), prefix, admin_port: (admin.address() as AddressInfo).port, concurrency: cfg.concurrency,
    schedule_ms: cfg.schedule, lock_ms: cfg.lockMs, stalled_interval_ms: cfg.stalledIntervalMs, master_key: cfg.master.current.id,
  }, 'webhooks worker running');

  let stopping = false;
  const stop = async (why: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info({ why }, 'stopping: finishing deliveries in flight');
    clearInterval(sweep);
    const timer = setTimeout(() => {
      // What is still in flight keeps its lock until --lock-ms and is then redelivered.
      log.warn({ drain_ms: cfg.drainMs }, 'drain timed out; deliveries still in flight will be redelivered');
      process.exit(1);
    }, cfg.drainMs);
    timer.unref();
    await delivery.close();
    admin.close();
    admin.closeAllConnections();
    connection.disconnect();
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}
