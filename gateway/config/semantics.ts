import { createPublicKey } from 'node:crypto';
import type { Static } from '@sinclair/typebox';
import { isMapping } from '../../common/config-text.js';
import type { Checked } from '../../common/schema-check.js';
import { storeProblems } from '../../common/store-config.js';
import { cidrProblem } from '../auth/allowlist.js';
import type { SluiceConfigSchema } from './schema.js';
import type { RouteDoc } from './schema/routes.js';
import { routeProblems } from '../route/route-problems.js';

// What the schema cannot say: references between sections (a route's upstream, a key's
// plan), fields that depend on each other, and values only code can judge (a PEM key).
// It runs on the document the schema has just checked, so that one run reports every
// problem. Parts the schema found wrong are skipped (`clean`), and references are only
// followed when they are strings, since a wrong type there is already reported.

export type ConfigDoc = Static<typeof SluiceConfigSchema>;

type Problems = string[];

export function semanticProblems({ value: c, clean }: Checked<ConfigDoc>): Problems {
  // A JSON pointer to a section's entry (names may hold / or ~).
  const sound = (section: string, name: string, ...rest: string[]): boolean =>
    clean(['', section, name.replaceAll('~', '~0').replaceAll('/', '~1'), ...rest].join('/'));
  const out: Problems = [];
  const plans = names(c.plans);
  const ref = (path: string, v: unknown, known: ReadonlySet<string>, what: string): void => {
    if (typeof v === 'string' && !known.has(v)) out.push(`${path}: unknown ${what} ${JSON.stringify(v)}`);
  };

  out.push(...storeProblems(c.store));
  if (c.webhooks?.keys_dir !== undefined && c.store?.kind === 'redis') out.push('webhooks.keys_dir: only for the memory store (on Redis the keys are kept there)');
  list(c.auth?.keys).forEach((k, i) => list(k.allow).forEach((cidr, j) => {
    const p = typeof cidr === 'string' ? cidrProblem(cidr) : undefined;
    if (p !== undefined) out.push(`auth.keys[${i}].allow[${j}]: ${p}`);
  }));
  const labels = new Set(c.admin?.token_digest === undefined ? [] : ['admin']);
  list(c.admin?.tokens).forEach((t, i) => {
    if (typeof t.label !== 'string') return;
    if (labels.has(t.label)) out.push(`admin.tokens[${i}].label: ${JSON.stringify(t.label)} is used twice (admin.token_digest is labelled "admin"); the audit log must tell tokens apart`);
    labels.add(t.label);
  });
  for (const [name, p] of entries(c.plans)) {
    if (sound('plans', name) && p.rate > 0 && (p.burst ?? p.rate) < 1) out.push(`plans.${name}.burst: must be >= 1 when rate is set`);
  }
  for (const [id, customer] of entries(c.customers)) ref(`customers.${id}.plan`, customer.plan, plans, 'plan');
  list(c.auth?.keys).forEach((k, i) => ref(`auth.keys[${i}].plan`, k.plan, plans, 'plan'));
  if (c.auth?.jwt !== undefined && clean('/auth/jwt')) out.push(...jwtProblems(c.auth.jwt, 'auth.jwt'));
  for (const [name, u] of entries(c.upstreams)) {
    const p = `upstreams.${name}`;
    if (sound('upstreams', name)) out.push(...upstreamProblems(u, p, c.store?.kind));
  }
  for (const section of ['limit_req_zones', 'limit_conn_zones'] as const) {
    for (const name of names(c[section])) {
      if (!ZONE_NAME.test(name)) out.push(`${section}.${name}: zone names may use letters, digits, _, . and - only`);
    }
  }
  for (const [name, z] of entries(c.limit_req_zones)) {
    if (sound('limit_req_zones', name, 'rate')) out.push(...rateProblems(z.rate, `limit_req_zones.${name}.rate`));
  }
  const upstreams = names(c.upstreams);
  out.push(...routeProblems(c));
  for (const { route: r, at: p } of routeDocs(c)) {
    ref(`${p}.upstream`, r.upstream, upstreams, 'upstream');
    list(r.plans).forEach((name, j) => ref(`${p}.plans[${j}]`, name, plans, 'plan'));
    out.push(...ruleProblems(list(r.limit_req), `${p}.limit_req`, 'limit_req', c.limit_req_zones, r.public));
    out.push(...ruleProblems(list(r.limit_conn), `${p}.limit_conn`, 'limit_conn', c.limit_conn_zones, r.public));
    list(r.limit_req).forEach((rule, j) => {
      if (rule.nodelay === true && rule.delay !== undefined) out.push(`${p}.limit_req[${j}]: give either nodelay or delay, not both`);
    });
  }
  return out;
}

/** Every route written in the config (top level, in virtual hosts, nested), with where it is written. */
function routeDocs(c: ConfigDoc): { route: RouteDoc; at: string }[] {
  const out: { route: RouteDoc; at: string }[] = [];
  const walk = (routes: readonly RouteDoc[] | undefined, at: string): void => {
    list(routes).forEach((route, i) => {
      out.push({ route, at: `${at}[${i}]` });
      walk(route.routes, `${at}[${i}].routes`);
    });
  };
  walk(c.routes, 'routes');
  list(c.virtual_hosts).forEach((v, i) => walk(v.routes, `virtual_hosts[${i}].routes`));
  return out;
}

const ZONE_NAME = /^[A-Za-z0-9_.-]+$/;
export const RATE = /^([0-9]+)r\/(s|m)$/;

/** nginx's internal unit: milli-requests per second; r/m keeps nginx's integer truncation (rate * 1000 / 60). */
export function rateMilli(rate: string): number {
  const m = RATE.exec(rate)!;
  return Math.floor(Number(m[1]) * 1000 / (m[2] === 'm' ? 60 : 1));
}

function rateProblems(rate: string, p: string): Problems {
  const milli = rateMilli(rate);
  if (milli < 1) return [`${p}: must be at least 1 milli-request per second (nginx rejects 0)`];
  return Number.isSafeInteger(milli * 1000) ? [] : [`${p}: is too large`];
}

/** Each rule names a known zone, once per route (nginx: "is duplicate"); a customer-keyed zone needs an identity, which a public route never has. */
function ruleProblems(rules: readonly { zone?: unknown }[], p: string, what: string, zones: Record<string, { key?: unknown }> | undefined, isPublic: unknown): Problems {
  const out: Problems = [];
  const known = names(zones);
  const seen = new Set<string>();
  rules.forEach((rule, i) => {
    const zone = rule.zone;
    if (typeof zone !== 'string') return;
    const at = `${p}[${i}].zone`;
    if (!known.has(zone)) out.push(`${at}: unknown ${what} zone ${JSON.stringify(zone)}`);
    else if (zones![zone]!.key === 'customer' && isPublic === true) out.push(`${at}: zone ${JSON.stringify(zone)} is keyed by customer, which a public route never has`);
    if (seen.has(zone)) out.push(`${at}: zone ${JSON.stringify(zone)} is already limited on this route`);
    seen.add(zone);
  });
  return out;
}

type UpstreamDoc = ConfigDoc['upstreams'][string];

/**
 * Discovery is refused with the memory store rather than ignored: an operator who asked
 * for registered backends and silently got none would find out from an outage.
 */
function upstreamProblems(u: UpstreamDoc, p: string, storeKind: unknown): Problems {
  const out: Problems = [];
  if (u.discover !== undefined && storeKind !== 'redis') {
    out.push(`${p}.discover: needs store.kind redis (backends register in Redis; the memory store has static targets only)`);
  }
  // A discovered upstream may start empty: it answers 503 until a backend registers.
  if (u.targets.length === 0 && u.discover === undefined) out.push(`${p}.targets: needs at least one target (or discover: true)`);
  else if (u.targets.length > 0 && u.targets.every((t) => t.backup)) out.push(`${p}.targets: needs at least one target that is not a backup`);
  const seen = new Set<string>();
  u.targets.forEach((t, i) => {
    if (!isOrigin(t.url)) out.push(`${p}.targets[${i}]: must be an origin like http://127.0.0.1:7001, got ${JSON.stringify(t.url)}`);
    else if (seen.has(t.url)) out.push(`${p}.targets[${i}]: ${t.url} is listed twice (give it a weight instead)`);
    seen.add(t.url);
  });
  const h = u.health;
  if (h?.timeout_ms !== undefined && h.timeout_ms > h.interval_ms) out.push(`${p}.health.timeout_ms: must be <= interval_ms (${h.interval_ms})`);
  const o = u.outlier;
  if (o.max_ejection_ms !== undefined && o.max_ejection_ms < o.base_ejection_ms) out.push(`${p}.outlier.max_ejection_ms: must be >= base_ejection_ms (${o.base_ejection_ms})`);
  return out;
}

function isOrigin(url: string): boolean {
  try {
    const u = new URL(url);
    return (u.protocol === 'http:' || u.protocol === 'https:') && (u.pathname === '/' || u.pathname === '');
  } catch {
    return false;
  }
}

type JwtDoc = NonNullable<ConfigDoc['auth']['jwt']>;

function jwtProblems(j: JwtDoc, p: string): Problems {
  const out: Problems = [];
  j.keys.forEach((k, i) => {
    const kp = `${p}.keys[${i}]`;
    if ((k.secret === undefined) === (k.pem === undefined)) out.push(`${kp}: needs exactly one of secret (HS256) or pem (RS256/ES256)`);
    else out.push(...jwtKeyProblems(kp, k.secret, k.pem, j.algorithms));
  });
  if (j.keys.length === 0 && j.jwks_url === undefined) out.push(`${p}: needs keys or jwks_url`);
  return out;
}

/**
 * A key the verifier could never use would otherwise surface as a crash at startup (a
 * PEM that does not parse) or as every token refused; say so where the key is written.
 */
function jwtKeyProblems(kp: string, secret: string | undefined, pem: string | undefined, algorithms: readonly string[]): Problems {
  if (secret !== undefined) {
    const out: Problems = [];
    // RFC 7518 3.2: an HS256 key must be at least as long as the hash (256 bits).
    if (Buffer.byteLength(secret, 'utf8') < 32) out.push(`${kp}.secret: must be at least 32 bytes for HS256`);
    if (!algorithms.includes('HS256')) out.push(`${kp}: a secret is for HS256, which is not in auth.jwt.algorithms`);
    return out;
  }
  let key;
  try {
    key = createPublicKey(pem!);
  } catch (err) {
    return [`${kp}.pem: not a PEM public key (${(err as Error).message})`];
  }
  if (key.asymmetricKeyType === 'rsa') {
    const out: Problems = [];
    if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) out.push(`${kp}.pem: RSA keys must be at least 2048 bits`);
    if (!algorithms.includes('RS256')) out.push(`${kp}: an RSA key is for RS256, which is not in auth.jwt.algorithms`);
    return out;
  }
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') {
    return algorithms.includes('ES256') ? [] : [`${kp}: a P-256 key is for ES256, which is not in auth.jwt.algorithms`];
  }
  return [`${kp}.pem: must be an RSA (RS256) or P-256 (ES256) public key, got ${key.asymmetricKeyType ?? 'unknown'}`];
}

function names(o: unknown): Set<string> {
  return new Set(isMapping(o) ? Object.keys(o) : []);
}

/** A map section's entries that are mappings (anything else the schema has reported). */
function entries<T>(o: Record<string, T> | undefined): [string, T][] {
  return isMapping(o) ? Object.entries(o).filter(([, v]) => isMapping(v)) as [string, T][] : [];
}

/** A list the schema has checked: its mapping items, or nothing if it is not a list. */
function list<T>(v: readonly T[] | undefined): T[] {
  return Array.isArray(v) ? v.filter((x): boolean => isMapping(x) || typeof x === 'string') : [];
}
