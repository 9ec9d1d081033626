import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../../gateway/config/load.js';
import type { SluiceConfig } from '../../gateway/config/types.js';

// The nginx module cannot read YAML, so it reads this JSON, derived from the Sluice
// config itself: one source for plans, customers, static keys, prefix and cache TTLs,
// so the two edges cannot disagree about what a customer may do.

export interface NginxModuleConfig {
  redis: { host: string; port: number; db: number; password?: string; timeout_ms: number; pool_size: number; idle_timeout_ms: number };
  prefix: string;
  pepper?: string;
  pepper_env?: string;
  cache_ttl_ms: number;
  negative_cache_ttl_ms: number;
  cache_max: number;
  failure_policy: 'open' | 'closed';
  lease_ttl_ms: number;
  plans: Record<string, Record<string, unknown>>;
  customers: Record<string, { plan?: string; overrides: Record<string, number> }>;
  keys: { digest: string; customer: string; plan?: string }[];
}

export interface ExportOptions {
  /** Name an environment variable instead of writing the pepper into the file (nginx.conf then needs `env NAME;`). */
  readonly pepperEnv?: string;
}

export function nginxModuleConfig(cfg: SluiceConfig, opts: ExportOptions = {}): NginxModuleConfig {
  if (cfg.store.kind !== 'redis' || cfg.store.url === undefined) {
    throw new Error('the nginx module shares limits through Redis: the Sluice config needs store.kind redis');
  }
  const url = new URL(cfg.store.url);
  const db = url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0;
  const longestUpstream = Math.max(0, ...[...cfg.upstreams.values()].map((u) => u.headers_timeout_ms + u.body_timeout_ms));
  const plans: NginxModuleConfig['plans'] = {};
  for (const [name, p] of cfg.plans) {
    plans[name] = {
      rate: p.rate, burst: p.burst, quota_day: p.quota_day, quota_month: p.quota_month,
      max_inflight: p.max_inflight, max_body_bytes: p.max_body_bytes, scope: p.scope,
      ...(p.failure_policy === undefined ? {} : { failure_policy: p.failure_policy }),
    };
  }
  const customers: NginxModuleConfig['customers'] = {};
  for (const [id, c] of cfg.customers) {
    // Costs are Sluice's: the module charges one unit a request (lua-compat/README.md).
    const { costs: _costs, ...limits } = c.overrides;
    customers[id] = { ...(c.plan === undefined ? {} : { plan: c.plan }), overrides: limits as Record<string, number> };
  }
  const out: NginxModuleConfig = {
    redis: {
      host: url.hostname, port: Number(url.port || 6379), db,
      ...(url.password === '' ? {} : { password: decodeURIComponent(url.password) }),
      timeout_ms: cfg.store.timeout_ms, pool_size: 64, idle_timeout_ms: 60_000,
    },
    prefix: cfg.store.prefix,
    cache_ttl_ms: cfg.auth.cache_ttl_ms,
    negative_cache_ttl_ms: cfg.auth.negative_cache_ttl_ms,
    cache_max: cfg.auth.cache_max,
    failure_policy: cfg.store.failure_policy,
    // What Sluice gives a lease (gateway/server.ts), so a crashed edge of either kind leaks one for as long.
    lease_ttl_ms: cfg.server.request_timeout_ms + longestUpstream,
    plans,
    customers,
    keys: cfg.auth.keys.map((k) => ({ digest: k.digest, customer: k.customer, ...(k.plan === undefined ? {} : { plan: k.plan }) })),
  };
  if (cfg.auth.pepper !== undefined) {
    if (opts.pepperEnv !== undefined) out.pepper_env = opts.pepperEnv;
    else out.pepper = cfg.auth.pepper;
  }
  return out;
}

// node dist/lua-compat/nginx/export-config.js sluice.yaml [out.json] [--pepper-env NAME]
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const usage = 'usage: export-config SLUICE.yaml [OUT.json] [--pepper-env NAME]\n';
  let parsed: { values: { 'pepper-env'?: string | undefined }; positionals: string[] };
  try {
    parsed = parseArgs({ allowPositionals: true, options: { 'pepper-env': { type: 'string' } } });
  } catch (err) {
    process.stderr.write(`export-config: ${(err as Error).message}\n${usage}`);
    process.exit(2);
  }
  const [file, outFile, extra] = parsed.positionals;
  if (file === undefined || extra !== undefined) {
    process.stderr.write(usage);
    process.exit(2);
  }
  const text = `${JSON.stringify(nginxModuleConfig(loadConfigFile(file), { pepperEnv: parsed.values['pepper-env'] }), null, 2)}\n`;
  if (outFile === undefined) process.stdout.write(text);
  else writeFileSync(outFile, text, { mode: 0o600 });
}
