import { createPublicKey, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isPair, isScalar, isSeq, parseDocument, Scalar, visit } from 'yaml';
import { DEFAULT_BODY_RATE } from '../../common/body-rate.js';
import { ConfigError } from '../../common/errors.js';
import { ConfigReader, join, type Obj } from './reader.js';
import type {
  AdminConfig, AuthConfig, BreakerConfig, CustomerConfig, LeaseConfig, JwtConfig, LimitConnRule, LimitConnZoneConfig, LimitOverrides,
  LimitReqRule, LimitReqZoneConfig, LogConfig, PlanConfig, RouteConfig, ZoneKey, ServerConfig, SluiceConfig, StaticKeyConfig, StoreConfig, StoreMode, StoreTlsConfig, UpstreamConfig,
  TargetConfig, HealthCheckConfig, OutlierConfig, DiscoverConfig, RetryConfig, CircuitConfig, ShedConfig,
} from './types.js';

export { ConfigError };

const DIGEST = /^[0-9a-f]{64}$/;

// `${NAME}` or `${NAME:-default}` (the default also applies when NAME is set but empty).
const PLACEHOLDER = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;
// What the YAML 1.2 core schema reads as a number; an env value like this in a plain
// scalar of its own (`port: ${PORT}`) becomes a number, as if it had been typed there.
const NUMBER = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/;

interface Placeholder { readonly whole: string; readonly name: string; readonly def: string | undefined }

/**
 * Parses the YAML with `${NAME}` and `${NAME:-default}` expanded in values. The
 * expansion happens after parsing, on scalars, so a value is taken verbatim: a `#`,
 * `: `, a quote or a newline in a secret stays part of it instead of being read as
 * YAML (a pepper with " #" in it must not silently become no pepper at all), and
 * placeholders in comments are never looked at. To get there, each placeholder is
 * first swapped for an inert token that is a valid plain scalar anywhere (flow
 * collections included), the text is parsed, and tokens in scalars are replaced.
 * A plain scalar that is one placeholder and nothing else takes the type its value
 * reads as: a number, true/false, or (when empty) nothing, so the field's default applies.
 */
function parseWithEnv(text: string, env: NodeJS.ProcessEnv, errors: string[]): unknown {
  const placeholders: Placeholder[] = [];
  const nonce = randomBytes(6).toString('hex');
  const tokenized = text.replace(PLACEHOLDER, (whole, name: string, def: string | undefined) =>
    `__sluice_env_${nonce}_${placeholders.push({ whole, name, def }) - 1}__`);
  const token = new RegExp(`__sluice_env_${nonce}_(\\d+)__`, 'g');
  const untokenize = (s: string): string => s.replace(token, (_, i: string) => placeholders[Number(i)]!.whole);

  const doc = parseDocument(tokenized);
  if (doc.errors.length > 0) throw new ConfigError(doc.errors.map((e) => `yaml: ${untokenize(e.message)}`));
  if (placeholders.length === 0) return doc.toJS();

  visit(doc, {
    Scalar(_key, node, ancestors) {
      if (typeof node.value !== 'string' || !node.value.includes(`__sluice_env_${nonce}_`)) return;
      const raw = node.value;
      const at = fieldPath(ancestors, node);
      const expanded = raw.replace(token, (_, i: string) => {
        const p = placeholders[Number(i)]!;
        const v = env[p.name];
        if (v !== undefined && v !== '') return v;
        if (p.def !== undefined) return p.def;
        errors.push(`${at}: environment variable ${p.name} is not set and ${p.whole} has no default`);
        return '';
      });
      const alone = node.type === Scalar.PLAIN && new RegExp(`^__sluice_env_${nonce}_\\d+__$`).test(raw);
      node.value = alone ? typed(expanded) : expanded;
    },
  });
  return doc.toJS();
}

function typed(v: string): string | number | boolean | null {
  if (v === '') return null;
  if (NUMBER.test(v)) return Number(v);
  if (v === 'true' || v === 'false') return v === 'true';
  return v;
}

/** `server.port`, `routes[0].upstream`: how errors name a field, from the YAML node's ancestors. */
function fieldPath(ancestors: readonly unknown[], node: unknown): string {
  let path = '';
  const chain = [...ancestors, node];
  for (let i = 0; i < chain.length - 1; i++) {
    const a = chain[i];
    const child = chain[i + 1];
    if (isSeq(a)) path += `[${a.items.indexOf(child as never)}]`;
    else if (isPair(a) && a.value === child && isScalar(a.key)) path = path === '' ? String(a.key.value) : `${path}.${String(a.key.value)}`;
  }
  return path === '' ? '(root)' : path;
}

export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): SluiceConfig {
  return parseConfig(readConfigText(file), env);
}

/** The file's text; a file that cannot be read is a config error like any other. */
export function readConfigText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`${file}: ${(err as Error).message}`]);
  }
}

export function parseConfig(text: string, env: NodeJS.ProcessEnv = process.env): SluiceConfig {
  const { r, root } = readRoot(text, env);
  const cfg = buildConfig(r, root);
  if (r.errors.length > 0) throw new ConfigError(r.errors);
  return deepFreeze(cfg);
}

/** The file's top-level mapping, env references resolved, and a reader holding any errors so far. */
function readRoot(text: string, env: NodeJS.ProcessEnv): { r: ConfigReader; root: Obj } {
  const envErrors: string[] = [];
  const raw = parseWithEnv(text, env, envErrors);
  const r = new ConfigReader();
  r.errors.push(...envErrors);
  if (!r.isObject(raw)) {
    r.fail('(root)', 'must be a mapping');
    throw new ConfigError(r.errors);
  }
  return { r, root: raw };
}

/**
 * Only the `store` section of a gateway config file, checked as the gateway checks it
 * (the rest of the file is not read): how a backend finds the Redis the gateways share,
 * in whatever mode, with the same password and TLS settings.
 */
export function parseStoreSection(text: string, env: NodeJS.ProcessEnv = process.env): StoreConfig {
  const { r, root } = readRoot(text, env);
  const store = readStore(r, root);
  if (store.kind !== 'redis') r.fail('store.kind', 'must be redis: backends register in the Redis the gateways share');
  if (r.errors.length > 0) throw new ConfigError(r.errors);
  return deepFreeze(store);
}

/** A store section from fields given in code (a command-line URL, a test), with every other field at its default. */
export function storeConfigOf(fields: Readonly<Record<string, unknown>>): StoreConfig {
  const r = new ConfigReader();
  const store = readStore(r, { store: { ...fields } });
  if (r.errors.length > 0) throw new ConfigError(r.errors);
  return deepFreeze(store);
}

function buildConfig(r: ConfigReader, root: Obj): SluiceConfig {
  r.known(root, '', ['server', 'admin', 'store', 'auth', 'plans', 'customers', 'routes', 'upstreams', 'spawn_backends', 'log',
    'limit_req_zones', 'limit_conn_zones', 'shed']);
  const plans = readPlans(r, root);
  const store = readStore(r, root);
  const upstreams = readUpstreams(r, root, store);
  const customers = readCustomers(r, root, plans);
  const auth = readAuth(r, root, plans);
  const limitReqZones = readLimitReqZones(r, root);
  const limitConnZones = readLimitConnZones(r, root);
  const routes = readRoutes(r, root, upstreams, plans, limitReqZones, limitConnZones);
  const spawnBackends = r.array(root, 'spawn_backends', '').map((item, i) => {
    const p = `spawn_backends[${i}]`;
    const o = r.isObject(item) ? item : (r.fail(p, 'must be a mapping'), {});
    r.known(o, p, ['port']);
    return { port: r.number(o, 'port', p, 0, { min: 1, max: 65535, integer: true }) };
  });
  return {
    server: readServer(r, root),
    admin: readAdmin(r, root),
    store,
    auth,
    plans,
    customers,
    routes,
    limit_req_zones: limitReqZones,
    limit_conn_zones: limitConnZones,
    upstreams,
    spawn_backends: spawnBackends,
    shed: readShed(r, root),
    log: readLog(r, root),
  };
}

function readServer(r: ConfigReader, root: Obj): ServerConfig {
  const p = 'server';
  const o = r.object(root, 'server', '');
  r.known(o, p, ['host', 'port', 'max_header_bytes', 'headers_timeout_ms', 'request_timeout_ms', 'keep_alive_timeout_ms', 'trust_forwarded', 'drain_timeout_ms',
    'min_body_rate', 'body_rate_window_ms']);
  return {
    host: r.string(o, 'host', p, '127.0.0.1'),
    port: r.number(o, 'port', p, 8080, { min: 0, max: 65535, integer: true }),
    max_header_bytes: r.number(o, 'max_header_bytes', p, 16384, { min: 1024, max: 1048576, integer: true }),
    headers_timeout_ms: r.number(o, 'headers_timeout_ms', p, 10000, { min: 100, integer: true }),
    request_timeout_ms: r.number(o, 'request_timeout_ms', p, 120000, { min: 100, integer: true }),
    keep_alive_timeout_ms: r.number(o, 'keep_alive_timeout_ms', p, 5000, { min: 100, integer: true }),
    trust_forwarded: r.boolean(o, 'trust_forwarded', p, false),
    drain_timeout_ms: r.number(o, 'drain_timeout_ms', p, 30000, { min: 0, integer: true }),
    min_body_rate: r.number(o, 'min_body_rate', p, DEFAULT_BODY_RATE.bytesPerSecond, { min: 0, integer: true }),
    body_rate_window_ms: r.number(o, 'body_rate_window_ms', p, DEFAULT_BODY_RATE.windowMs, { min: 100, integer: true }),
  };
}

function readAdmin(r: ConfigReader, root: Obj): AdminConfig {
  const p = 'admin';
  const o = r.object(root, 'admin', '');
  r.known(o, p, ['host', 'port', 'token_digest']);
  const tokenDigest = r.optionalString(o, 'token_digest', p);
  if (tokenDigest !== undefined && !DIGEST.test(tokenDigest)) r.fail(join(p, 'token_digest'), 'must be 64 lower-case hex characters (sha256)');
  return {
    host: r.string(o, 'host', p, '127.0.0.1'),
    port: r.number(o, 'port', p, 9090, { min: 0, max: 65535, integer: true }),
    token_digest: tokenDigest,
  };
}

function readStore(r: ConfigReader, root: Obj): StoreConfig {
  const p = 'store';
  const o = r.object(root, 'store', '');
  r.known(o, p, ['kind', 'url', 'timeout_ms', 'failure_policy', 'prefix', 'probe_interval_ms', 'breaker', 'fleet_floor', 'lease',
    'mode', 'sentinels', 'sentinel_name', 'nodes', 'password', 'tls']);
  const kind = r.oneOf(o, 'kind', p, ['memory', 'redis'] as const, 'memory');
  const mode = r.oneOf(o, 'mode', p, ['standalone', 'sentinel', 'cluster'] as const, 'standalone');
  const url = r.optionalString(o, 'url', p);
  const sentinels = r.stringArray(o, 'sentinels', p).map((hp, i) => {
    const m = /^(.+):(\d{1,5})$/.exec(hp);
    if (m === null || Number(m[2]) > 65535) { r.fail(`${p}.sentinels[${i}]`, `must be host:port, got ${JSON.stringify(hp)}`); return { host: '', port: 0 }; }
    return { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port: Number(m[2]) };
  });
  const sentinelName = r.optionalString(o, 'sentinel_name', p);
  const nodes = r.stringArray(o, 'nodes', p);
  const redisUrl = (at: string, u: string): void => {
    if (!/^rediss?:\/\//.test(u)) r.fail(at, `must start with redis:// or rediss://, got ${JSON.stringify(u)}`);
  };
  nodes.forEach((u, i) => redisUrl(`${p}.nodes[${i}]`, u));
  if (kind === 'redis') {
    // Each mode names its servers its own way; a field of another mode would be silently ignored, so it is refused.
    const only = (field: string, owner: StoreMode, present: boolean): void => {
      if (present && mode !== owner) r.fail(join(p, field), `is for mode ${owner}, not ${mode}`);
    };
    only('url', 'standalone', url !== undefined);
    only('sentinels', 'sentinel', sentinels.length > 0);
    only('sentinel_name', 'sentinel', sentinelName !== undefined);
    only('nodes', 'cluster', nodes.length > 0);
    if (mode === 'standalone') {
      if (url === undefined) r.fail(join(p, 'url'), 'is required when kind is redis');
      else redisUrl(join(p, 'url'), url);
    } else if (mode === 'sentinel') {
      if (sentinels.length === 0) r.fail(join(p, 'sentinels'), 'is required when mode is sentinel (a list of host:port)');
      if (sentinelName === undefined) r.fail(join(p, 'sentinel_name'), 'is required when mode is sentinel');
    } else if (nodes.length === 0) {
      r.fail(join(p, 'nodes'), 'is required when mode is cluster (a list of redis:// urls)');
    }
  }
  return {
    kind,
    url,
    timeout_ms: r.number(o, 'timeout_ms', p, 50, { min: 1, integer: true }),
    failure_policy: r.oneOf(o, 'failure_policy', p, ['open', 'closed'] as const, 'open'),
    prefix: r.string(o, 'prefix', p, 'sluice:'),
    probe_interval_ms: r.number(o, 'probe_interval_ms', p, 200, { min: 10, integer: true }),
    breaker: readBreaker(r, o, p),
    fleet_floor: r.number(o, 'fleet_floor', p, 8, { min: 1, integer: true }),
    lease: readLease(r, o, p),
    mode,
    sentinels,
    sentinel_name: sentinelName,
    nodes,
    password: r.optionalString(o, 'password', p),
    tls: readStoreTls(r, o, p),
  };
}

function readLease(r: ConfigReader, o: Obj, parent: string): LeaseConfig {
  const p = join(parent, 'lease');
  const l = r.object(o, 'lease', parent);
  r.known(l, p, ['enabled', 'target_ms', 'max_share']);
  return {
    enabled: r.boolean(l, 'enabled', p, true),
    target_ms: r.number(l, 'target_ms', p, 75, { min: 10, max: 10_000, integer: true }),
    max_share: r.number(l, 'max_share', p, 0.1, { min: 0.001, max: 1 }),
  };
}

function readBreaker(r: ConfigReader, o: Obj, parent: string): BreakerConfig {
  const p = join(parent, 'breaker');
  const b = r.object(o, 'breaker', parent);
  r.known(b, p, ['consecutive_failures', 'failure_percent', 'min_calls', 'window_ms']);
  return {
    consecutive_failures: r.number(b, 'consecutive_failures', p, 5, { min: 1, integer: true }),
    failure_percent: r.number(b, 'failure_percent', p, 50, { min: 1, max: 100 }),
    min_calls: r.number(b, 'min_calls', p, 20, { min: 1, integer: true }),
    window_ms: r.number(b, 'window_ms', p, 10000, { min: 100, integer: true }),
  };
}

function readStoreTls(r: ConfigReader, o: Obj, parent: string): StoreTlsConfig | undefined {
  if (o.tls === undefined || o.tls === null || o.tls === false) return undefined;
  const p = join(parent, 'tls');
  const t = o.tls === true ? {} : r.object(o, 'tls', parent);
  r.known(t, p, ['ca', 'servername', 'cert', 'key', 'reject_unauthorized']);
  const cert = r.optionalString(t, 'cert', p);
  const key = r.optionalString(t, 'key', p);
  if ((cert === undefined) !== (key === undefined)) r.fail(p, 'cert and key go together (client-certificate authentication needs both)');
  return {
    ca: r.optionalString(t, 'ca', p),
    servername: r.optionalString(t, 'servername', p),
    cert,
    key,
    reject_unauthorized: r.boolean(t, 'reject_unauthorized', p, true),
  };
}

const LIMIT_FIELDS = ['rate', 'burst', 'quota_day', 'quota_month', 'max_inflight', 'max_body_bytes'] as const;

function readLimitOverrides(r: ConfigReader, o: Obj, p: string): LimitOverrides {
  const out: Record<string, number> = {};
  for (const f of LIMIT_FIELDS) {
    const v = r.optionalNumber(o, f, p, { min: 0 });
    if (v !== undefined) out[f] = v;
  }
  return out;
}

function readPlans(r: ConfigReader, root: Obj): Map<string, PlanConfig> {
  const plans = new Map<string, PlanConfig>();
  const o = r.object(root, 'plans', '');
  for (const [name, v] of Object.entries(o)) {
    const p = `plans.${name}`;
    if (!r.isObject(v)) { r.fail(p, 'must be a mapping'); continue; }
    r.known(v, p, [...LIMIT_FIELDS, 'priority', 'scope', 'failure_policy', 'shadow', 'deny_cache_ms']);
    const rate = r.number(v, 'rate', p, 0, { min: 0 });
    const burst = r.number(v, 'burst', p, rate, { min: 0 });
    if (rate > 0 && burst < 1) r.fail(join(p, 'burst'), 'must be >= 1 when rate is set');
    plans.set(name, {
      name,
      rate,
      burst,
      quota_day: r.number(v, 'quota_day', p, 0, { min: 0, integer: true }),
      quota_month: r.number(v, 'quota_month', p, 0, { min: 0, integer: true }),
      max_inflight: r.number(v, 'max_inflight', p, 0, { min: 0, integer: true }),
      max_body_bytes: r.number(v, 'max_body_bytes', p, 10 * 1024 * 1024, { min: 0, integer: true }),
      priority: r.number(v, 'priority', p, 0, { integer: true }),
      scope: r.oneOf(v, 'scope', p, ['customer', 'key'] as const, 'customer'),
      failure_policy: v.failure_policy === undefined ? undefined : r.oneOf(v, 'failure_policy', p, ['open', 'closed'] as const, 'open'),
      shadow: r.boolean(v, 'shadow', p, false),
      deny_cache_ms: r.number(v, 'deny_cache_ms', p, 60_000, { min: 0, integer: true }),
    });
  }
  if (plans.size === 0) r.fail('plans', 'at least one plan is required');
  return plans;
}

function readCustomers(r: ConfigReader, root: Obj, plans: Map<string, PlanConfig>): Map<string, CustomerConfig> {
  const customers = new Map<string, CustomerConfig>();
  const o = r.object(root, 'customers', '');
  for (const [id, v] of Object.entries(o)) {
    const p = `customers.${id}`;
    if (!r.isObject(v)) { r.fail(p, 'must be a mapping'); continue; }
    r.known(v, p, ['plan', 'overrides']);
    const plan = r.optionalString(v, 'plan', p);
    if (plan !== undefined && !plans.has(plan)) r.fail(join(p, 'plan'), `unknown plan ${JSON.stringify(plan)}`);
    const ov = r.object(v, 'overrides', p);
    r.known(ov, join(p, 'overrides'), LIMIT_FIELDS);
    customers.set(id, { id, plan, overrides: readLimitOverrides(r, ov, join(p, 'overrides')) });
  }
  return customers;
}

function readAuth(r: ConfigReader, root: Obj, plans: Map<string, PlanConfig>): AuthConfig {
  const p = 'auth';
  const o = r.object(root, 'auth', '');
  r.known(o, p, ['pepper', 'cache_ttl_ms', 'negative_cache_ttl_ms', 'stale_if_error_ms', 'cache_max', 'keys', 'jwt']);
  const keys: StaticKeyConfig[] = r.array(o, 'keys', p).map((item, i) => {
    const kp = `auth.keys[${i}]`;
    const k = r.isObject(item) ? item : (r.fail(kp, 'must be a mapping'), {});
    r.known(k, kp, ['digest', 'customer', 'plan', 'label']);
    const digest = r.requiredString(k, 'digest', kp).replace(/^sha256:/, '');
    if (digest !== '' && !DIGEST.test(digest)) r.fail(join(kp, 'digest'), 'must be 64 lower-case hex characters (sha256 of the key)');
    const plan = r.optionalString(k, 'plan', kp);
    if (plan !== undefined && !plans.has(plan)) r.fail(join(kp, 'plan'), `unknown plan ${JSON.stringify(plan)}`);
    return { digest, customer: r.requiredString(k, 'customer', kp), plan, label: r.optionalString(k, 'label', kp) };
  });
  return {
    pepper: r.optionalString(o, 'pepper', p),
    cache_ttl_ms: r.number(o, 'cache_ttl_ms', p, 60000, { min: 0, integer: true }),
    negative_cache_ttl_ms: r.number(o, 'negative_cache_ttl_ms', p, 5000, { min: 0, integer: true }),
    stale_if_error_ms: r.number(o, 'stale_if_error_ms', p, 30000, { min: 0, integer: true }),
    cache_max: r.number(o, 'cache_max', p, 100000, { min: 1, integer: true }),
    keys,
    jwt: o.jwt === undefined ? undefined : readJwt(r, r.object(o, 'jwt', p)),
  };
}

function readJwt(r: ConfigReader, o: Obj): JwtConfig {
  const p = 'auth.jwt';
  r.known(o, p, ['algorithms', 'issuer', 'audience', 'keys', 'jwks_url', 'customer_claim', 'plan_claim', 'clock_tolerance_s']);
  const algorithms = r.stringArray(o, 'algorithms', p);
  algorithms.forEach((a, i) => {
    if (!['HS256', 'RS256', 'ES256'].includes(a)) r.fail(`${p}.algorithms[${i}]`, `must be HS256, RS256 or ES256, got ${JSON.stringify(a)}`);
  });
  if (algorithms.length === 0) r.fail(join(p, 'algorithms'), 'pin at least one algorithm');
  const keys = r.array(o, 'keys', p).map((item, i) => {
    const kp = `${p}.keys[${i}]`;
    const k = r.isObject(item) ? item : (r.fail(kp, 'must be a mapping'), {});
    r.known(k, kp, ['kid', 'secret', 'pem']);
    const secret = r.optionalString(k, 'secret', kp);
    const pem = r.optionalString(k, 'pem', kp);
    if ((secret === undefined) === (pem === undefined)) r.fail(kp, 'needs exactly one of secret (HS256) or pem (RS256/ES256)');
    else checkJwtKey(r, kp, secret, pem, algorithms);
    return { kid: r.optionalString(k, 'kid', kp), secret, pem };
  });
  const jwksUrl = r.optionalString(o, 'jwks_url', p);
  if (keys.length === 0 && jwksUrl === undefined) r.fail(p, 'needs keys or jwks_url');
  if (jwksUrl !== undefined && !/^https?:\/\//.test(jwksUrl)) r.fail(join(p, 'jwks_url'), 'must be an http(s) URL');
  return {
    algorithms: algorithms as JwtConfig['algorithms'],
    issuer: r.optionalString(o, 'issuer', p),
    audience: r.optionalString(o, 'audience', p),
    keys,
    jwks_url: jwksUrl,
    customer_claim: r.string(o, 'customer_claim', p, 'sub'),
    plan_claim: r.string(o, 'plan_claim', p, 'plan'),
    clock_tolerance_s: r.number(o, 'clock_tolerance_s', p, 5, { min: 0 }),
  };
}

/**
 * A key the verifier could never use would otherwise surface as a crash at startup (a
 * PEM that does not parse) or as every token refused; say so where the key is written.
 */
function checkJwtKey(r: ConfigReader, kp: string, secret: string | undefined, pem: string | undefined, algorithms: readonly string[]): void {
  if (secret !== undefined) {
    // RFC 7518 3.2: an HS256 key must be at least as long as the hash (256 bits).
    if (Buffer.byteLength(secret, 'utf8') < 32) r.fail(join(kp, 'secret'), 'must be at least 32 bytes for HS256');
    if (!algorithms.includes('HS256')) r.fail(kp, 'a secret is for HS256, which is not in auth.jwt.algorithms');
    return;
  }
  let key;
  try {
    key = createPublicKey(pem!);
  } catch (err) {
    r.fail(join(kp, 'pem'), `not a PEM public key (${(err as Error).message})`);
    return;
  }
  if (key.asymmetricKeyType === 'rsa') {
    if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) r.fail(join(kp, 'pem'), 'RSA keys must be at least 2048 bits');
    if (!algorithms.includes('RS256')) r.fail(kp, 'an RSA key is for RS256, which is not in auth.jwt.algorithms');
  } else if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') {
    if (!algorithms.includes('ES256')) r.fail(kp, 'a P-256 key is for ES256, which is not in auth.jwt.algorithms');
  } else {
    r.fail(join(kp, 'pem'), `must be an RSA (RS256) or P-256 (ES256) public key, got ${key.asymmetricKeyType ?? 'unknown'}`);
  }
}

const BALANCERS = ['round_robin', 'weighted_round_robin', 'least_outstanding', 'p2c_ewma'] as const;

function readUpstreams(r: ConfigReader, root: Obj, store: StoreConfig): Map<string, UpstreamConfig> {
  const out = new Map<string, UpstreamConfig>();
  const o = r.object(root, 'upstreams', '');
  for (const [name, v] of Object.entries(o)) {
    const p = `upstreams.${name}`;
    if (!r.isObject(v)) { r.fail(p, 'must be a mapping'); continue; }
    r.known(v, p, ['targets', 'balancer', 'ewma_decay_ms', 'health', 'outlier',
      'connections', 'connect_timeout_ms', 'headers_timeout_ms', 'body_timeout_ms', 'retry', 'circuit', 'discover']);
    const discover = readDiscover(r, v, p, name, store);
    const targets = v.targets === undefined && discover !== undefined ? [] : r.array(v, 'targets', p).map((item, i) => readTarget(r, item, `${p}.targets[${i}]`));
    // A discovered upstream may start empty: it answers 503 until a backend registers.
    if (targets.length === 0 && discover === undefined) r.fail(join(p, 'targets'), 'needs at least one target (or discover: true)');
    else if (targets.length > 0 && targets.every((t) => t.backup)) r.fail(join(p, 'targets'), 'needs at least one target that is not a backup');
    const seen = new Set<string>();
    targets.forEach((t, i) => {
      if (seen.has(t.url)) r.fail(`${p}.targets[${i}]`, `${t.url} is listed twice (give it a weight instead)`);
      seen.add(t.url);
    });
    const connections = r.number(v, 'connections', p, 64, { min: 1, integer: true });
    out.set(name, {
      name,
      targets,
      balancer: r.oneOf(v, 'balancer', p, BALANCERS, 'p2c_ewma'),
      ewma_decay_ms: r.number(v, 'ewma_decay_ms', p, 10000, { min: 1, integer: true }),
      health: v.health === undefined || v.health === null ? undefined : readHealth(r, r.object(v, 'health', p), join(p, 'health')),
      outlier: readOutlier(r, r.object(v, 'outlier', p), join(p, 'outlier')),
      connections,
      connect_timeout_ms: r.number(v, 'connect_timeout_ms', p, 2000, { min: 1, integer: true }),
      headers_timeout_ms: r.number(v, 'headers_timeout_ms', p, 30000, { min: 1, integer: true }),
      body_timeout_ms: r.number(v, 'body_timeout_ms', p, 30000, { min: 1, integer: true }),
      retry: readRetry(r, r.object(v, 'retry', p), join(p, 'retry')),
      circuit: readCircuit(r, r.object(v, 'circuit', p), join(p, 'circuit'), connections),
      ...(discover === undefined ? {} : { discover }),
    });
  }
  return out;
}

/**
 * `discover: true` or `{name, poll_interval_ms}`. Refused with the memory store rather than
 * ignored: an operator who asked for registered backends and silently got none would
 * find out from an outage.
 */
function readDiscover(r: ConfigReader, v: Obj, p: string, name: string, store: StoreConfig): DiscoverConfig | undefined {
  const d = v.discover;
  if (d === undefined || d === null || d === false) return undefined;
  const dp = join(p, 'discover');
  if (store.kind !== 'redis') r.fail(dp, 'needs store.kind redis (backends register in Redis; the memory store has static targets only)');
  if (d === true) return { name, poll_interval_ms: 250 };
  if (!r.isObject(d)) { r.fail(dp, 'must be true or a mapping with name, poll_interval_ms'); return undefined; }
  r.known(d, dp, ['name', 'poll_interval_ms']);
  const n = r.string(d, 'name', dp, name);
  if (!/^[A-Za-z0-9_.-]+$/.test(n)) r.fail(join(dp, 'name'), `must be letters, digits, _ . - (it is part of a Redis key), got ${JSON.stringify(n)}`);
  return { name: n, poll_interval_ms: r.number(d, 'poll_interval_ms', dp, 250, { min: 10, max: 10_000, integer: true }) };
}

/** A target is an origin string, or `{url, weight, backup, max_fails, fail_timeout_ms}`. */
function readTarget(r: ConfigReader, item: unknown, p: string): TargetConfig {
  const o: Obj = typeof item === 'string' ? { url: item } : r.isObject(item) ? item : (r.fail(p, 'must be an origin or a mapping with url'), {});
  const at = typeof item === 'string' ? p : join(p, 'url');
  r.known(o, p, ['url', 'weight', 'backup', 'max_fails', 'fail_timeout_ms']);
  const url = typeof o.url === 'string' ? o.url : '';
  let ok = false;
  try { const u = new URL(url); ok = (u.protocol === 'http:' || u.protocol === 'https:') && (u.pathname === '/' || u.pathname === ''); } catch { ok = false; }
  if (!ok) r.fail(at, `must be an origin like http://127.0.0.1:7001, got ${JSON.stringify(o.url)}`);
  return {
    url,
    weight: r.number(o, 'weight', p, 1, { min: 1, max: 10000, integer: true }),
    backup: r.boolean(o, 'backup', p, false),
    max_fails: r.optionalNumber(o, 'max_fails', p, { min: 0, integer: true }),
    fail_timeout_ms: r.optionalNumber(o, 'fail_timeout_ms', p, { min: 1, integer: true }),
  };
}

function readHealth(r: ConfigReader, o: Obj, p: string): HealthCheckConfig {
  r.known(o, p, ['path', 'interval_ms', 'timeout_ms', 'healthy_threshold', 'unhealthy_threshold']);
  const path = r.string(o, 'path', p, '/healthz');
  if (!path.startsWith('/')) r.fail(join(p, 'path'), 'must start with /');
  const interval = r.number(o, 'interval_ms', p, 5000, { min: 10, integer: true });
  const timeout = r.number(o, 'timeout_ms', p, Math.min(1000, interval), { min: 1, integer: true });
  if (timeout > interval) r.fail(join(p, 'timeout_ms'), `must be <= interval_ms (${interval})`);
  return {
    path,
    interval_ms: interval,
    timeout_ms: timeout,
    healthy_threshold: r.number(o, 'healthy_threshold', p, 2, { min: 1, integer: true }),
    unhealthy_threshold: r.number(o, 'unhealthy_threshold', p, 3, { min: 1, integer: true }),
  };
}

function readRetry(r: ConfigReader, o: Obj, p: string): RetryConfig {
  r.known(o, p, ['attempts', 'budget_percent', 'min_per_second', 'max_buffered_body_bytes']);
  return {
    attempts: r.number(o, 'attempts', p, 2, { min: 0, max: 10, integer: true }),
    budget_percent: r.number(o, 'budget_percent', p, 20, { min: 0, max: 100 }),
    min_per_second: r.number(o, 'min_per_second', p, 3, { min: 0 }),
    // Each in-flight request may hold a copy this large for its whole exchange; keep the default small.
    max_buffered_body_bytes: r.number(o, 'max_buffered_body_bytes', p, 65536, { min: 0, max: 16 * 1024 * 1024, integer: true }),
  };
}

function readCircuit(r: ConfigReader, o: Obj, p: string, connections: number): CircuitConfig {
  r.known(o, p, ['max_connections', 'max_pending', 'max_inflight']);
  return {
    max_connections: r.number(o, 'max_connections', p, connections, { min: 1, integer: true }),
    max_pending: r.number(o, 'max_pending', p, 0, { min: 0, integer: true }),
    max_inflight: r.number(o, 'max_inflight', p, 0, { min: 0, integer: true }),
  };
}

function readOutlier(r: ConfigReader, o: Obj, p: string): OutlierConfig {
  r.known(o, p, ['consecutive_failures', 'base_ejection_ms', 'max_ejection_ms', 'max_ejection_percent']);
  const base = r.number(o, 'base_ejection_ms', p, 30000, { min: 1, integer: true });
  const max = r.number(o, 'max_ejection_ms', p, Math.max(300000, base), { min: 1, integer: true });
  if (max < base) r.fail(join(p, 'max_ejection_ms'), `must be >= base_ejection_ms (${base})`);
  return {
    consecutive_failures: r.number(o, 'consecutive_failures', p, 5, { min: 0, integer: true }),
    base_ejection_ms: base,
    max_ejection_ms: max,
    max_ejection_percent: r.number(o, 'max_ejection_percent', p, 50, { min: 0, max: 100 }),
  };
}

function readRoutes(
  r: ConfigReader, root: Obj, upstreams: Map<string, UpstreamConfig>, plans: Map<string, PlanConfig>,
  reqZones: Map<string, LimitReqZoneConfig>, connZones: Map<string, LimitConnZoneConfig>,
): RouteConfig[] {
  const routes = r.array(root, 'routes', '').map((item, i) => {
    const p = `routes[${i}]`;
    const o = r.isObject(item) ? item : (r.fail(p, 'must be a mapping'), {});
    r.known(o, p, ['name', 'prefix', 'upstream', 'public', 'plans', 'max_body_bytes', 'limit_req', 'limit_req_status', 'limit_conn', 'limit_conn_status']);
    const isPublic = r.boolean(o, 'public', p, false);
    const prefix = r.requiredString(o, 'prefix', p);
    if (prefix !== '' && !prefix.startsWith('/')) r.fail(join(p, 'prefix'), 'must start with /');
    const upstream = r.requiredString(o, 'upstream', p);
    if (upstream !== '' && !upstreams.has(upstream)) r.fail(join(p, 'upstream'), `unknown upstream ${JSON.stringify(upstream)}`);
    const routePlans = o.plans === undefined ? undefined : r.stringArray(o, 'plans', p);
    routePlans?.forEach((name, j) => { if (!plans.has(name)) r.fail(`${p}.plans[${j}]`, `unknown plan ${JSON.stringify(name)}`); });
    return {
      name: r.string(o, 'name', p, prefix),
      prefix,
      upstream,
      public: isPublic,
      plans: routePlans,
      max_body_bytes: r.optionalNumber(o, 'max_body_bytes', p, { min: 0, integer: true }),
      limit_req: readLimitReqRules(r, o, p, reqZones, isPublic),
      // nginx accepts 400..599 for both and defaults to 503.
      limit_req_status: r.number(o, 'limit_req_status', p, 503, { min: 400, max: 599, integer: true }),
      limit_conn: readLimitConnRules(r, o, p, connZones, isPublic),
      limit_conn_status: r.number(o, 'limit_conn_status', p, 503, { min: 400, max: 599, integer: true }),
    };
  });
  if (routes.length === 0) r.fail('routes', 'at least one route is required');
  return routes;
}

// nginx's limit_req_zone rate syntax; r/m keeps nginx's integer truncation (rate * 1000 / 60).
const RATE = /^([0-9]+)r\/(s|m)$/;
const ZONE_NAME = /^[A-Za-z0-9_.-]+$/;

function readZoneKey(r: ConfigReader, o: Obj, p: string): ZoneKey {
  const raw = r.requiredString(o, 'key', p);
  if (raw === 'client') return { source: 'client' };
  if (raw === 'customer') return { source: 'customer' };
  const m = /^header:([!#$%&'*+.^_`|~0-9A-Za-z-]+)$/.exec(raw);
  if (m !== null) return { source: 'header', header: m[1]!.toLowerCase() };
  if (raw !== '') r.fail(join(p, 'key'), `must be client, customer or header:<Name>, got ${JSON.stringify(raw)}`);
  return { source: 'client' };
}

function readLimitReqZones(r: ConfigReader, root: Obj): Map<string, LimitReqZoneConfig> {
  const out = new Map<string, LimitReqZoneConfig>();
  const o = r.object(root, 'limit_req_zones', '');
  for (const [name, v] of Object.entries(o)) {
    const p = `limit_req_zones.${name}`;
    if (!ZONE_NAME.test(name)) r.fail(p, 'zone names may use letters, digits, _, . and - only');
    if (!r.isObject(v)) { r.fail(p, 'must be a mapping'); continue; }
    r.known(v, p, ['kind', 'key', 'rate', 'size']);
    r.oneOf(v, 'kind', p, ['nginx_limit_req'] as const, 'nginx_limit_req');
    const key = readZoneKey(r, v, p);
    const rate = r.requiredString(v, 'rate', p);
    const m = RATE.exec(rate);
    let rateMilli = 0;
    if (m === null) {
      if (rate !== '') r.fail(join(p, 'rate'), `must look like 10r/s or 30r/m, got ${JSON.stringify(rate)}`);
    } else {
      rateMilli = Math.floor(Number(m[1]) * 1000 / (m[2] === 'm' ? 60 : 1));
      if (rateMilli < 1) r.fail(join(p, 'rate'), 'must be at least 1 milli-request per second (nginx rejects 0)');
      else if (!Number.isSafeInteger(rateMilli * 1000)) r.fail(join(p, 'rate'), 'is too large');
    }
    out.set(name, { name, key, rate, rate_milli: rateMilli, size: readSize(r, v, p) });
  }
  return out;
}

function readLimitConnZones(r: ConfigReader, root: Obj): Map<string, LimitConnZoneConfig> {
  const out = new Map<string, LimitConnZoneConfig>();
  const o = r.object(root, 'limit_conn_zones', '');
  for (const [name, v] of Object.entries(o)) {
    const p = `limit_conn_zones.${name}`;
    if (!ZONE_NAME.test(name)) r.fail(p, 'zone names may use letters, digits, _, . and - only');
    if (!r.isObject(v)) { r.fail(p, 'must be a mapping'); continue; }
    r.known(v, p, ['key', 'size']);
    out.set(name, { name, key: readZoneKey(r, v, p), size: readSize(r, v, p) });
  }
  return out;
}

function readSize(r: ConfigReader, o: Obj, p: string): string | undefined {
  const size = r.optionalString(o, 'size', p);
  if (size !== undefined && !/^[0-9]+[kKmMgG]?$/.test(size)) r.fail(join(p, 'size'), `must be an nginx size like 10m, got ${JSON.stringify(size)}`);
  return size;
}

/** A customer-keyed zone needs an identity, which a public route never establishes. */
function checkZoneUse(r: ConfigReader, p: string, zone: string, key: ZoneKey | undefined, isPublic: boolean): void {
  if (key?.source === 'customer' && isPublic) r.fail(join(p, 'zone'), `zone ${JSON.stringify(zone)} is keyed by customer, which a public route never has`);
}

function readLimitReqRules(r: ConfigReader, o: Obj, routePath: string, zones: Map<string, LimitReqZoneConfig>, isPublic: boolean): LimitReqRule[] {
  const seen = new Set<string>();
  return r.array(o, 'limit_req', routePath).map((item, i) => {
    const p = `${routePath}.limit_req[${i}]`;
    const v = r.isObject(item) ? item : (r.fail(p, 'must be a mapping'), {});
    r.known(v, p, ['zone', 'burst', 'delay', 'nodelay']);
    const zone = r.requiredString(v, 'zone', p);
    if (zone !== '' && !zones.has(zone)) r.fail(join(p, 'zone'), `unknown limit_req zone ${JSON.stringify(zone)}`);
    // nginx refuses the same zone twice in one location ("is duplicate").
    if (zone !== '' && seen.has(zone)) r.fail(join(p, 'zone'), `zone ${JSON.stringify(zone)} is already limited on this route`);
    seen.add(zone);
    checkZoneUse(r, p, zone, zones.get(zone)?.key, isPublic);
    const burst = r.number(v, 'burst', p, 0, { min: 0, integer: true });
    const nodelay = r.boolean(v, 'nodelay', p, false);
    const hasDelay = v.delay !== undefined && v.delay !== null;
    if (nodelay && hasDelay) r.fail(p, 'give either nodelay or delay, not both');
    const delay = nodelay ? burst : r.number(v, 'delay', p, 0, { min: 0, integer: true });
    return { zone, burst, delay, nodelay };
  });
}

function readLimitConnRules(r: ConfigReader, o: Obj, routePath: string, zones: Map<string, LimitConnZoneConfig>, isPublic: boolean): LimitConnRule[] {
  const seen = new Set<string>();
  return r.array(o, 'limit_conn', routePath).map((item, i) => {
    const p = `${routePath}.limit_conn[${i}]`;
    const v = r.isObject(item) ? item : (r.fail(p, 'must be a mapping'), {});
    r.known(v, p, ['zone', 'max']);
    const zone = r.requiredString(v, 'zone', p);
    if (zone !== '' && !zones.has(zone)) r.fail(join(p, 'zone'), `unknown limit_conn zone ${JSON.stringify(zone)}`);
    if (zone !== '' && seen.has(zone)) r.fail(join(p, 'zone'), `zone ${JSON.stringify(zone)} is already limited on this route`);
    seen.add(zone);
    checkZoneUse(r, p, zone, zones.get(zone)?.key, isPublic);
    if (v.max === undefined || v.max === null) r.fail(join(p, 'max'), 'is required');
    return { zone, max: r.number(v, 'max', p, 1, { min: 1, max: 65535, integer: true }) };
  });
}

function readShed(r: ConfigReader, root: Obj): ShedConfig {
  const p = 'shed';
  const o = r.object(root, 'shed', '');
  r.known(o, p, ['max_inflight', 'max_event_loop_delay_ms', 'sample_interval_ms', 'retry_after_s']);
  return {
    max_inflight: r.number(o, 'max_inflight', p, 0, { min: 0, integer: true }),
    max_event_loop_delay_ms: r.number(o, 'max_event_loop_delay_ms', p, 0, { min: 0 }),
    // Below ~10 ms the delay histogram has too few samples per window to mean anything.
    sample_interval_ms: r.number(o, 'sample_interval_ms', p, 100, { min: 10, max: 10000, integer: true }),
    retry_after_s: r.number(o, 'retry_after_s', p, 1, { min: 0, max: 3600, integer: true }),
  };
}

function readLog(r: ConfigReader, root: Obj): LogConfig {
  const o = r.object(root, 'log', '');
  r.known(o, 'log', ['level', 'access']);
  return {
    level: r.oneOf(o, 'level', 'log', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info'),
    access: r.boolean(o, 'access', 'log', true),
  };
}

function deepFreeze<T>(v: T): T {
  if (v instanceof Map) {
    for (const x of v.values()) deepFreeze(x);
  } else if (typeof v === 'object' && v !== null) {
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return Object.freeze(v);
}
