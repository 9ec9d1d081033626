import { Agent, Pool } from 'undici';
import type { Logger } from 'pino';
import type { TargetConfig, UpstreamConfig } from '../config/types.js';
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

  /**
   * A target joins at run time (discovery). The arrays change in place because the
   * outlier detector and the active checks were handed the same ones.
   */
  add(t: Target): void {
    (this.targets as Target[]).push(t);
    (t.backup ? this.backups as Target[] : this.primaries as Target[]).push(t);
  }

  /** Takes a target out of rotation; requests already sent to it finish on its pool. */
  remove(t: Target): boolean {
    const out = (ts: readonly Target[]): boolean => {
      const i = ts.indexOf(t);
      if (i !== -1) (ts as Target[]).splice(i, 1);
      return i !== -1;
    };
    out(t.backup ? this.backups : this.primaries);
    return out(this.targets);
  }

  pick(now = performance.now()): Target | undefined {
    const c = usable(this.primaries, now) ?? usable(this.backups, now);
    return c === undefined ? undefined : this.balancer.pick(c, now);
  }

  /**
   * The pick with circuit breaking and, for a retry, without the targets the request
   * already failed on. A tier whose available targets are all at their breaker limits is
   * `overloaded` (backups are for dead primaries, not busy ones).
   */
  choose(now: number, exclude: readonly Target[] = NONE): Target | 'unavailable' | 'overloaded' {
    const up = exclude.length === 0 ? undefined : (t: Target): boolean => !exclude.includes(t);
    const c = usable(this.primaries, now, up) ?? usable(this.backups, now, up);
    if (c === undefined) return 'unavailable';
    const open = those(c, admitting);
    return open === undefined ? 'overloaded' : this.balancer.pick(open, now);
  }
}

const NONE: readonly Target[] = [];
const admitting = (t: Target): boolean => t.admits();

/** The available ones of `ts` (that also pass `also`); `ts` itself when all are (the usual case allocates nothing). */
function usable(ts: readonly Target[], now: number, also?: (t: Target) => boolean): readonly Target[] | undefined {
  let n = 0;
  for (const t of ts) if (t.available(now) && (also === undefined || also(t))) n++;
  if (n === 0) return undefined;
  return n === ts.length ? ts : ts.filter((t) => t.available(now) && (also === undefined || also(t)));
}

function those(ts: readonly Target[], ok: (t: Target) => boolean): readonly Target[] | undefined {
  let n = 0;
  for (const t of ts) if (ok(t)) n++;
  if (n === 0) return undefined;
  return n === ts.length ? ts : ts.filter(ok);
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
  private readonly outliers = new Map<string, Outlier>();

  constructor(upstreams: ReadonlyMap<string, UpstreamConfig>, opts: PoolSetOptions = {}) {
    const events = healthEvents(opts);
    for (const cfg of upstreams.values()) {
      const outlier = new Outlier(cfg.outlier, events);
      const targets = cfg.targets.map((t) => newTarget(t, cfg, outlier));
      outlier.targets = targets;
      this.outliers.set(cfg.name, outlier);
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

  /**
   * A target added at run time (a backend registered in Redis). connections caps the
   * pool below the upstream's when the backend says it can take fewer at once.
   */
  addTarget(upstream: string, t: TargetConfig, connections?: number): Target {
    const u = this.get(upstream);
    const target = newTarget(t, u.cfg, this.outliers.get(upstream)!, connections);
    u.add(target);
    return target;
  }

  /** Out of rotation at once; resolves once its in-flight requests finished and its pool closed. */
  async removeTarget(upstream: string, t: Target): Promise<void> {
    if (this.get(upstream).remove(t)) await t.pool.close();
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

function newTarget(t: TargetConfig, cfg: UpstreamConfig, outlier: Outlier, connections = cfg.connections): Target {
  return new Target(t, cfg, new Pool(t.url, {
    connections: Math.min(connections, cfg.connections),
    pipelining: 1,
    connectTimeout: cfg.connect_timeout_ms,
    headersTimeout: cfg.headers_timeout_ms,
    bodyTimeout: cfg.body_timeout_ms,
    keepAliveTimeout: 30_000,
  }), outlier);
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
