import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type { StoreConfig } from './store-config.js';

/** Either kind of ioredis client; both take the same commands, scripts and pub/sub calls. */
export type RedisClient = Redis | Cluster;

/** TLS options for node:tls, read once at start (a missing CA file fails the start, not the first request). */
export function tlsOptions(cfg: StoreConfig): ConnectionOptions | undefined {
  const t = cfg.tls;
  if (t === undefined) return undefined;
  return {
    ca: t.ca === undefined ? undefined : readFileSync(t.ca),
    cert: t.cert === undefined ? undefined : readFileSync(t.cert),
    key: t.key === undefined ? undefined : readFileSync(t.key),
    servername: t.servername,
    rejectUnauthorized: t.reject_unauthorized,
  };
}

/**
 * ioredis options for one data-node connection, in every mode. `base` carries what
 * the store needs (offline queue, retries); the deployment's auth and TLS go on top.
 */
function nodeOptions(cfg: StoreConfig, base: RedisOptions): RedisOptions {
  const tls = tlsOptions(cfg);
  return {
    ...base,
    ...(cfg.password !== undefined ? { password: cfg.password } : {}),
    ...(tls !== undefined ? { tls } : {}),
  };
}

const SLOTS_REFRESH_MS = 1000;

/**
 * ioredis re-reads the slot map only after a "Connection is closed." error or a MOVED. A
 * hung or partitioned master produces neither: its connection stays open and silent, so
 * without a periodic refresh the store would never find the promoted replica. One
 * CLUSTER SLOTS a second per process is cheap. This is not ioredis's own
 * slotsRefreshInterval because that timer holds the process open: a client disconnected
 * while still connecting can re-arm it after the disconnect, and a test file then never
 * exited. This timer is unref'd and also stops at 'end'.
 */
function refreshSlotsPeriodically(cluster: Cluster): void {
  const timer = setInterval(() => { if (cluster.status === 'ready') cluster.refreshSlotsCache(); }, SLOTS_REFRESH_MS);
  timer.unref();
  cluster.once('end', () => clearInterval(timer));
}

/** One client for the configured deployment: a standalone url, a Sentinel-managed master, or a Cluster. */
export function createRedisClient(cfg: StoreConfig, base: RedisOptions): RedisClient {
  const mode = cfg.mode ?? 'standalone';
  if (mode === 'cluster') {
    const opts: ClusterOptions = {
      redisOptions: nodeOptions(cfg, base),
      // Limits must read what they just wrote: a replica may lag, so every command goes to the slot's master.
      scaleReads: 'master',
      enableAutoPipelining: base.enableAutoPipelining,
      enableOfflineQueue: base.enableOfflineQueue,
      maxRedirections: 16,
      retryDelayOnFailover: 100,
      clusterRetryStrategy: base.retryStrategy,
      ...(cfg.tls !== undefined ? { dnsLookup: (address, cb) => cb(null, address) } : {}),
    };
    const cluster = new Cluster((cfg.nodes ?? []).map((u) => u), opts);
    refreshSlotsPeriodically(cluster);
    return cluster;
  }
  if (mode === 'sentinel') {
    const tls = tlsOptions(cfg);
    return new Redis({
      ...nodeOptions(cfg, base),
      sentinels: (cfg.sentinels ?? []).map((s) => ({ host: s.host, port: s.port })),
      name: cfg.sentinel_name!,
      // Reconnect when the sentinels announce +switch-master. Without it a hung master
      // (connection open, silent) is never left: nothing errors, so nothing reconnects.
      failoverDetector: true,
      ...(tls !== undefined ? { enableTLSForSentinelMode: true, sentinelTLS: tls } : {}),
    });
  }
  return new Redis(cfg.url!, nodeOptions(cfg, base));
}

/** Where the store points, for logs: never a password. */
export function describeStore(cfg: StoreConfig): string {
  const mode = cfg.mode ?? 'standalone';
  if (mode === 'cluster') return `cluster ${(cfg.nodes ?? []).map(redactUrl).join(',')}`;
  if (mode === 'sentinel') return `sentinel ${cfg.sentinel_name} via ${(cfg.sentinels ?? []).map((s) => `${s.host}:${s.port}`).join(',')}`;
  return redactUrl(cfg.url ?? '');
}

function redactUrl(u: string): string {
  return u.replace(/\/\/[^@/]*@/, '//***@');
}
