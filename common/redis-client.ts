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
  if (mode === 'sentinel') return sentinelClient(cfg, base);
  return new Redis(cfg.url!, nodeOptions(cfg, base));
}

/**
 * A client of the master the sentinels name. Its duplicates (BullMQ duplicates the
 * connection it is given for its workers' own and blocking connections) are made here
 * too: ioredis's duplicate() is a plain `new Redis(options)`, which would have neither
 * fix below.
 */
function sentinelClient(cfg: StoreConfig, base: RedisOptions): Redis {
  const tls = tlsOptions(cfg);
  const client = new Redis({
    ...nodeOptions(cfg, base),
    sentinels: (cfg.sentinels ?? []).map((s) => ({ host: s.host, port: s.port })),
    name: cfg.sentinel_name!,
    // Reconnect when the sentinels announce +switch-master. Without it a hung master
    // (connection open, silent) is never left: nothing errors, so nothing reconnects.
    // ioredis subscribes to every sentinel, so any one of them announcing it is enough.
    failoverDetector: true,
    // A deposed master that came back as a replica answers writes with READONLY: ask
    // the sentinels again rather than keep writing to it.
    reconnectOnError: (err) => (err.message.startsWith('READONLY') ? 2 : false),
    ...(tls !== undefined ? { enableTLSForSentinelMode: true, sentinelTLS: tls } : {}),
    // Connected below, once patched: ioredis's constructor would start the first lookup
    // with its own resolve (the first sentinel listed decides) before it could be replaced.
    lazyConnect: true,
  });
  const connector = sentinelConnector(client);
  resolveFromEverySentinel(connector, cfg.sentinels ?? [], cfg.sentinel_name!);
  keepConnectingThroughFailover(client, connector);
  client.duplicate = (override?: Partial<RedisOptions>) => sentinelClient(cfg, { ...base, ...override });
  // As ioredis's constructor does: connection errors surface as 'error' events and reconnects.
  if (base.lazyConnect !== true) client.connect().catch(() => {});
  return client;
}

/** How long a (re)connect waits for the sentinels' answers before it takes the best it has. */
const SENTINEL_ASK_MS = 500;

interface SentinelEndpoint { readonly host: string; readonly port: number }
/** The parts of ioredis 5's (private) SentinelConnector replaced here. */
interface SentinelConnector {
  resolve(endpoint: SentinelEndpoint): Promise<SentinelEndpoint | null>;
  connectToSentinel(endpoint: SentinelEndpoint): Redis;
  connect(emit: (type: string, err: unknown) => void): Promise<unknown>;
}

function sentinelConnector(client: Redis): SentinelConnector {
  const connector = (client as unknown as { connector?: Partial<SentinelConnector> }).connector;
  if (connector?.resolve === undefined || connector.connectToSentinel === undefined || connector.connect === undefined) {
    throw new Error('ioredis changed: its SentinelConnector has no resolve/connectToSentinel/connect to replace');
  }
  return connector as SentinelConnector;
}

/**
 * ioredis asks the sentinels one at a time, in the configured order, and takes the first
 * answer. A sentinel cut off from the others together with the old master still names
 * that master after the majority has promoted a replica, so a gateway that lists it first
 * reconnects to the deposed master and its writes are lost when the partition heals
 * (measured: 40-44 admissions lost against 12 with that sentinel listed last). Here every
 * (re)connect asks all configured sentinels at once (SENTINEL MASTER) and follows the
 * answer with the highest config epoch: an epoch only grows by a failover that a
 * majority of sentinels authorised, so an isolated sentinel cannot win while any
 * sentinel of the majority answers. A gateway that reaches only the isolated one follows
 * it; nothing on its side of the cut knows better.
 *
 * This replaces ioredis's (private) SentinelConnector.resolve on this client; ioredis
 * 5's connector calls it with the next sentinel in its list and connects to the address
 * it returns (null: try the next).
 */
function resolveFromEverySentinel(connector: SentinelConnector, sentinels: readonly SentinelEndpoint[], name: string): void {
  const ask = connector.connectToSentinel.bind(connector);
  connector.resolve = async (first) => {
    const all = sentinels.some((s) => s.host === first.host && s.port === first.port) ? sentinels : [first, ...sentinels];
    const answers = await Promise.all(all.map((s) => masterOf(ask(s), name)));
    let best: { host: string; port: number; epoch: number } | undefined;
    for (const a of answers) if (a !== undefined && (best === undefined || a.epoch > best.epoch)) best = a;
    return best === undefined ? null : { host: best.host, port: best.port };
  };
}

/**
 * ioredis's failover detector (subscribed to +switch-master on every sentinel) reacts to
 * a failover by disconnecting its connector. When that connection was already lost (the
 * master was killed) and the client is reconnecting, the disconnect lands in the middle
 * of the sentinels' lookup; the connector then fails that connect with "Connection is
 * closed.", and ioredis gives the client up for good (status `end`, no more reconnects).
 * Seen in the fault harness: the webhook worker's connection ended at a failover and
 * nothing was delivered again. A connect so interrupted, and not by our own disconnect,
 * starts over: the new lookup finds the master the failover promoted.
 */
function keepConnectingThroughFailover(client: Redis, connector: SentinelConnector): void {
  const connect = connector.connect.bind(connector);
  const closedByUs = (): boolean => (client as unknown as { manuallyClosing: boolean }).manuallyClosing;
  connector.connect = async (emit) => {
    for (;;) {
      try {
        return await connect(emit);
      } catch (err) {
        if (closedByUs() || (err as Error).message !== CONNECTION_CLOSED) throw err;
      }
    }
  };
}

/** ioredis's message for a connect its connector was told to abandon. */
const CONNECTION_CLOSED = 'Connection is closed.';

/**
 * One sentinel's view of the master, or undefined when it does not answer in time. The
 * epoch comes from SENTINEL MASTER, the address from GET-MASTER-ADDR-BY-NAME: while the
 * sentinel that leads a failover is still reconfiguring the replicas, SENTINEL MASTER
 * already shows the new epoch but still the old master's address (seen: the old address
 * at the new epoch, a tie with the others' new address), where GET-MASTER-ADDR-BY-NAME
 * names the replica being promoted.
 */
async function masterOf(sentinel: Redis, name: string): Promise<{ host: string; port: number; epoch: number } | undefined> {
  sentinel.on('error', () => {});
  let timer: NodeJS.Timeout | undefined;
  try {
    const replies = await Promise.race([
      Promise.all([sentinel.call('SENTINEL', 'MASTER', name) as Promise<string[]>, sentinel.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name) as Promise<string[] | null>]),
      new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), SENTINEL_ASK_MS); }),
    ]);
    if (replies === undefined) return undefined;
    const [master, addr] = replies;
    if (!Array.isArray(master) || !Array.isArray(addr)) return undefined;
    const epochAt = master.indexOf('config-epoch');
    const host = addr[0];
    const port = Number(addr[1]);
    if (host === undefined || !(port > 0)) return undefined;
    return { host, port, epoch: epochAt < 0 ? 0 : Number(master[epochAt + 1]) };
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
    sentinel.disconnect();
  }
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
