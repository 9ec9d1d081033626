import { Pool } from 'undici';
import type { UpstreamConfig } from '../config/types.js';

/** One backend origin with its own keep-alive connection pool. */
export interface Target {
  readonly origin: string;
  readonly pool: Pool;
  readonly upstream: UpstreamConfig;
}

/** A named upstream: its targets and how to pick one. Round-robin for now. */
export class Upstream {
  private next = 0;
  constructor(readonly cfg: UpstreamConfig, readonly targets: readonly Target[]) {}

  pick(): Target {
    const t = this.targets[this.next]!;
    this.next = (this.next + 1) % this.targets.length;
    return t;
  }
}

/** Every upstream of the config, each target with one undici Pool. */
export class PoolSet {
  readonly upstreams = new Map<string, Upstream>();

  constructor(upstreams: ReadonlyMap<string, UpstreamConfig>) {
    for (const cfg of upstreams.values()) {
      const targets = cfg.targets.map((origin) => ({
        origin,
        upstream: cfg,
        pool: new Pool(origin, {
          connections: cfg.connections,
          pipelining: 1,
          connectTimeout: cfg.connect_timeout_ms,
          headersTimeout: cfg.headers_timeout_ms,
          bodyTimeout: cfg.body_timeout_ms,
          keepAliveTimeout: 30_000,
        }),
      }));
      this.upstreams.set(cfg.name, new Upstream(cfg, targets));
    }
  }

  get(name: string): Upstream {
    const u = this.upstreams.get(name);
    if (u === undefined) throw new Error(`no upstream ${name}`);
    return u;
  }

  async close(): Promise<void> {
    await Promise.all([...this.upstreams.values()].flatMap((u) => u.targets.map((t) => t.pool.close())));
  }
}
