import { createHash } from 'node:crypto';

// Builders for test configs: a minimal valid gateway on ephemeral ports, to which each
// test adds what it is about.

export const ADMIN_TOKEN = 'test-admin-token';

export interface TestConfigOptions {
  readonly upstreams: string[];
  readonly store?: { kind: 'memory' } | ({ kind: 'redis'; timeout_ms?: number; late_grace_ms?: number; failure_policy?: 'open' | 'closed'; probe_interval_ms?: number; tls?: object; lease?: { enabled?: boolean } } & (
    | { mode?: 'standalone'; url: string }
    /** `sentinels` as the config file spells them: `host:port`. */
    | { mode: 'sentinel'; sentinels: readonly string[]; sentinel_name: string }
    | { mode: 'cluster'; nodes: readonly string[] }
  ));
  readonly plans?: Record<string, object>;
  readonly keys?: { digest: string; customer: string; plan?: string }[];
  readonly server?: object;
  readonly routes?: object[];
  readonly upstream?: object;
  readonly auth?: object;
  readonly customers?: object;
  readonly log?: object;
  /** Merged into the admin section (tokens, auth_failures, ...). */
  readonly admin?: object;
  readonly webhooks?: object;
  readonly billing?: object;
}

export function testConfig(o: TestConfigOptions): Record<string, unknown> {
  return {
    server: { host: '127.0.0.1', port: 0, ...o.server },
    admin: { host: '127.0.0.1', port: 0, token_digest: adminDigest(), ...o.admin },
    // A test that does not name a store deadline is not about deadlines: it gets a generous
    // one, so a busy host's slow answer is not a 503 it never meant to judge.
    store: o.store === undefined ? { kind: 'memory' } : o.store.kind === 'redis' ? { timeout_ms: 2000, ...o.store } : o.store,
    plans: o.plans ?? { test: { rate: 1000, burst: 1000 } },
    auth: { keys: o.keys ?? [], ...o.auth },
    ...(o.customers === undefined ? {} : { customers: o.customers }),
    ...(o.billing === undefined ? {} : { billing: o.billing }),
    upstreams: { main: { targets: o.upstreams, ...o.upstream } },
    routes: o.routes ?? [{ name: 'all', prefix: '/', upstream: 'main' }],
    ...(o.webhooks === undefined ? {} : { webhooks: o.webhooks }),
    log: { level: 'info', access: true, ...o.log },
  };
}

export function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

export function adminDigest(): string {
  return sha256(ADMIN_TOKEN);
}
