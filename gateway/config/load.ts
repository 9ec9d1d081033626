import { expandShorthands, isMapping, parseYamlWithEnv, readConfigText } from '../../common/config-text.js';
import { ConfigError } from '../../common/errors.js';
import { schemaChecker } from '../../common/schema-check.js';
import { toStoreConfig } from '../../common/store-config.js';
import { resolveListeners } from '../listen/listener-config.js';
import { resolveRoutes, virtualHosts } from '../route/resolve.js';
import { SluiceConfigSchema } from './schema.js';
import { rateMilli, semanticProblems, type ConfigDoc } from './semantics.js';
import type { LimitConnZoneConfig, LimitReqZoneConfig, SluiceConfig, UpstreamConfig, ZoneKey } from './types.js';

// gateway/limits and gateway/store tests (and the load tester) import these from here.
export { ConfigError } from '../../common/errors.js';
export { storeConfigOf } from '../../common/store-config.js';

const checkSchema = schemaChecker(SluiceConfigSchema);

export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): SluiceConfig {
  return parseConfig(readConfigText(file), env);
}

/**
 * The config file's text, `${ENV}` references resolved, checked against the schema
 * (which fills the defaults in) and then for what the schema cannot say; every problem
 * is reported at once, each naming its field. The result is frozen.
 */
export function parseConfig(text: string, env: NodeJS.ProcessEnv = process.env): SluiceConfig {
  const errors: string[] = [];
  const root = parseYamlWithEnv(text, env, errors);
  if (!isMapping(root)) throw new ConfigError([...errors, '(root): must be a mapping']);
  const checked = checkSchema(expandShorthands(SluiceConfigSchema, root));
  const { listeners, problems } = resolveListeners(checked);
  errors.push(...checked.errors, ...semanticProblems(checked), ...problems);
  if (errors.length > 0) throw new ConfigError(errors);
  return deepFreeze({ ...build(checked.value), listeners });
}

/** The checked document as the gateway uses it: maps by name, and the defaults that depend on another field. */
function build(c: ConfigDoc): Omit<SluiceConfig, 'listeners'> {
  const routes = resolveRoutes(c.routes, 'routes');
  return {
    server: c.server,
    admin: c.admin,
    store: toStoreConfig(c.store),
    auth: { ...c.auth, keys: c.auth.keys.map((k) => ({ ...k, digest: k.digest.replace(/^sha256:/, '') })) },
    plans: byName(c.plans, (p, name) => ({ ...p, name, burst: p.burst ?? p.rate })),
    customers: byName(c.customers, (cu, id) => ({ id, plan: cu.plan, overrides: cu.overrides })),
    upstreams: byName(c.upstreams, upstream),
    routes,
    virtual_hosts: virtualHosts(c.virtual_hosts.map((v, i) => ({ ...v, routes: resolveRoutes(v.routes, `virtual_hosts[${i}].routes`) })), routes),
    limit_req_zones: byName(c.limit_req_zones, (z, name): LimitReqZoneConfig => ({ name, key: zoneKey(z.key), rate: z.rate, rate_milli: rateMilli(z.rate), size: z.size })),
    limit_conn_zones: byName(c.limit_conn_zones, (z, name): LimitConnZoneConfig => ({ name, key: zoneKey(z.key), size: z.size })),
    spawn_backends: c.spawn_backends,
    shed: c.shed,
    webhooks: c.webhooks,
    log: c.log,
  };
}

function upstream(u: ConfigDoc['upstreams'][string], name: string): UpstreamConfig {
  const { health, outlier, circuit, discover, ...rest } = u;
  return {
    ...rest,
    name,
    health: health === undefined ? undefined : { ...health, timeout_ms: health.timeout_ms ?? Math.min(1000, health.interval_ms) },
    outlier: { ...outlier, max_ejection_ms: outlier.max_ejection_ms ?? Math.max(300000, outlier.base_ejection_ms) },
    circuit: { ...circuit, max_connections: circuit.max_connections ?? u.connections },
    ...(discover === undefined ? {} : { discover: { ...discover, name: discover.name ?? name } }),
  };
}

function zoneKey(key: string): ZoneKey {
  if (key === 'client' || key === 'customer') return { source: key };
  return { source: 'header', header: key.slice('header:'.length).toLowerCase() };
}

function byName<T, U>(o: Record<string, T>, f: (v: T, name: string) => U): Map<string, U> {
  return new Map(Object.entries(o).map(([name, v]) => [name, f(v, name)]));
}

function deepFreeze<T>(v: T): T {
  if (v instanceof Map) {
    for (const x of v.values()) deepFreeze(x);
  } else if (typeof v === 'object' && v !== null) {
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return Object.freeze(v);
}
