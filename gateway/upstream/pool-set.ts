import { Agent, Pool } from 'undici';
import type { Logger } from 'pino';
import type { UpstreamConfig } from '../config/types.js';
import type { Metrics } from '../observe/metrics.js';
import { makeBalancer, type Balancer } from './balancers.js';
import { ActiveHealth, Outlier, type HealthEvents } from './health.js';
import { Target } from './target.js';

export { Target } from './target.js';

/**
 * A named upstream: its targets, the balancer over them, and their health. The primaries
 * take the traffic; backups only while no primary is available; nobody at all is an
 * `undefined` pick, which the balance stage turns into an immediate 503.
 */
export class Upstream {
  readonly primaries: readonly Target[];
  readonly backups: readonly Target[];
  private readonly balancer: Balancer;

  constructor(readonly cfg: UpstreamConfig, readonly targets: readonly Target[]) {
    this.primaries = targets.filter((t) => !t.backup);
    this.backups = targets.filter((t) => t.backup);
    this.balancer = makeBalancer(cfg.balancer);
  }

  pick(now = performance.now()): Target | undefined {
    const c = usable(this.primaries, now) ?? usable(this.backups, now);
    return c === undefined ? undefined : this.balancer.pick(c, now);
  }
}

/** The available ones of `ts`; `ts` itself when all are (the usual case allocates nothing). */
function usable(ts: readonly Target[], now: number): readonly Target[] | undefined {
  let n = 0;
  for (const t of ts) if (t.available(now)) n++;
  if (n === 0) return undefined;
  return n === ts.length ? ts : ts.filter((t) => t.available(now));
}

export interface PoolSetOptions {
  readonly metrics?: Metrics;
  readonly log?: Logger;
}

/** Every upstream of the config, each target with one undici Pool. */
export class PoolSet {
  readonly upstreams = new Map<string, Upstream>();
  private readonly checks: ActiveHealth[] = [];
  // Health checks get connections of their own: one per target is plenty.
  private readonly checkAgent = new Agent({ connections: 1, keepAliveTimeout: 30_000 });

  constructor(upstreams: ReadonlyMap<string, UpstreamConfig>, opts: PoolSetOptions = {}) {
    const events = healthEvents(opts);
    for (const cfg of upstreams.values()) {
      const outlier = new Outlier(cfg.outlier, events);
      const targets = cfg.targets.map((t) => new Target(t, cfg, new Pool(t.url, {
        connections: cfg.connections,
        pipelining: 1,
        connectTimeout: cfg.connect_timeout_ms,
        headersTimeout: cfg.headers_timeout_ms,
        bodyTimeout: cfg.body_timeout_ms,
        keepAliveTimeout: 30_000,
      }), outlier));
      outlier.targets = targets;
      this.upstreams.set(cfg.name, new Upstream(cfg, targets));
      if (cfg.health !== undefined) this.checks.push(new ActiveHealth(cfg.health, targets, this.checkAgent, events));
    }
    opts.metrics?.watchTargets(() => this.health());
    for (const c of this.checks) c.start();
  }

  get(name: string): Upstream {
    const u = this.upstreams.get(name);
    if (u === undefined) throw new Error(`no upstream ${name}`);
    return u;
  }

  /** Every target with whether it takes traffic now, for the health gauge. */
  health(): { upstream: string; target: string; up: boolean }[] {
    const now = performance.now();
    return [...this.upstreams.values()].flatMap((u) => u.targets.map((t) => ({ upstream: u.cfg.name, target: t.origin, up: t.available(now) })));
  }

  async close(): Promise<void> {
    for (const c of this.checks) c.close();
    await Promise.all([
      ...[...this.upstreams.values()].flatMap((u) => u.targets.map((t) => t.pool.close())),
      this.checkAgent.close(),
    ]);
  }
}

function healthEvents(opts: PoolSetOptions): HealthEvents {
  return {
    ejected(t, source, forMs) {
      opts.metrics?.upstreamEjections.inc({ upstream: t.upstream.name, target: t.origin, source });
      opts.log?.warn({ upstream: t.upstream.name, target: t.origin, source, ejected_ms: forMs }, 'upstream target taken out of rotation');
    },
    restored(t) {
      opts.log?.info({ upstream: t.upstream.name, target: t.origin }, 'upstream target back in rotation (health check passed)');
    },
  };
}
