import type { Logger } from 'pino';
import type { StoreConfig, UpstreamConfig } from '../config/types.js';
import type { PoolSet, Target } from './pool-set.js';
import { liveMembers, registryClient, registryKeys, type Member, type RegistryClient, type RegistryKeys } from '../../common/registry.js';

interface Watched {
  readonly cfg: UpstreamConfig;
  readonly keys: RegistryKeys;
  /** Discovered targets by url, with the details they registered (a change replaces the target). */
  readonly current: Map<string, { target: Target; json: string }>;
  /** Origins configured statically: those win over a registration of the same address. */
  readonly statics: Set<string>;
  busy: boolean;
  again: boolean;
}

/**
 * Keeps the discovered upstreams of one PoolSet in step with Redis. A backend joining or
 * leaving cleanly publishes on `P upstream:changed`, so those arrive at once; a backend
 * that dies just stops heartbeating, which only the poll (poll_interval_ms, also the
 * safety net for a missed message or a Redis reconnect) can see, within one interval of
 * its expiry.
 */
export class Discovery {
  private readonly redis: RegistryClient;
  private readonly sub: RegistryClient;
  private readonly watched = new Map<string, Watched>();
  private readonly timers: NodeJS.Timeout[] = [];
  private closed = false;

  constructor(store: StoreConfig, upstreams: readonly UpstreamConfig[], private readonly pools: PoolSet, private readonly log: Logger) {
    const prefix = store.prefix;
    this.redis = registryClient(store, 'sluice-discovery');
    this.sub = registryClient(store, 'sluice-discovery-sub');
    for (const cfg of upstreams) {
      const name = cfg.discover!.name;
      const w: Watched = {
        cfg, keys: registryKeys(prefix, name), current: new Map(), statics: new Set(cfg.targets.map((t) => t.url)), busy: false, again: false,
      };
      this.watched.set(name, w);
      const t = setInterval(() => this.reconcile(w), cfg.discover!.poll_interval_ms);
      t.unref();
      this.timers.push(t);
    }
    const channel = registryKeys(prefix, '').changed;
    this.sub.on('message', (_ch: string, name: string) => {
      const w = this.watched.get(name);
      if (w !== undefined) this.reconcile(w);
    });
    // Also on every reconnect: whatever was published while we were away is lost.
    this.sub.on('ready', () => {
      void this.sub.subscribe(channel).catch(() => {});
      for (const w of this.watched.values()) this.reconcile(w);
    });
    this.redis.on('ready', () => { for (const w of this.watched.values()) this.reconcile(w); });
  }

  /** Resolves after the first look at Redis (or after timeoutMs): a gateway starts with the backends already registered. */
  async ready(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!this.closed && performance.now() < deadline) {
      if (this.redis.status === 'ready') {
        await Promise.all([...this.watched.values()].map((w) => this.sync(w).catch(() => {})));
        return;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Stops watching; the targets stay in the PoolSet, which closes them with the rest. */
  close(): void {
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.sub.disconnect();
    this.redis.disconnect();
  }

  // One reconcile at a time per upstream; a trigger during one runs another after it, so
  // a change published mid-read is never missed.
  private reconcile(w: Watched): void {
    if (this.closed) return;
    if (w.busy) { w.again = true; return; }
    w.busy = true;
    void this.sync(w)
      .catch((err: Error) => this.log.debug({ upstream: w.cfg.name, err: err.message }, 'discovery: redis read failed; keeping the targets we have'))
      .finally(() => {
        w.busy = false;
        if (w.again) { w.again = false; this.reconcile(w); }
      });
  }

  private async sync(w: Watched): Promise<void> {
    const members = await liveMembers(this.redis, w.keys);
    if (this.closed) return;
    const seen = new Map<string, Member>();
    for (const m of members) if (!w.statics.has(m.url)) seen.set(m.url, m);
    for (const [url, had] of w.current) {
      const m = seen.get(url);
      if (m !== undefined && JSON.stringify(m) === had.json) continue;
      w.current.delete(url);
      this.log.info({ upstream: w.cfg.name, target: url, reason: m === undefined ? 'gone' : 'changed' }, 'discovered target left the upstream');
      void this.pools.removeTarget(w.cfg.name, had.target).catch(() => {});
    }
    for (const [url, m] of seen) {
      if (w.current.has(url)) continue;
      const target = this.pools.addTarget(
        w.cfg.name,
        { url, weight: m.weight, backup: false, max_fails: undefined, fail_timeout_ms: undefined },
        m.capacity > 0 ? m.capacity : undefined,
      );
      w.current.set(url, { target, json: JSON.stringify(m) });
      this.log.info({ upstream: w.cfg.name, target: url, weight: m.weight, capacity: m.capacity }, 'discovered target joined the upstream');
    }
  }
}
