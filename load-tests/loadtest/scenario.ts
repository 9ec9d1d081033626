import { readdirSync, readFileSync } from 'node:fs';
import { dirname, extname, isAbsolute, join as joinPath } from 'node:path';
import { parseDocument } from 'yaml';
import { ConfigError } from '../../gateway/config/load.js';
import { ConfigReader, join, type Obj } from '../../gateway/config/reader.js';

// A load-test scenario: who sends what, how often, and what each sender's plan allows.
// Read with the gateway config's schema reader, so a bad scenario gets every error at
// once, each naming its field (`groups[1].plan.rate: must be >= 0, got -1`).

export type Profile =
  | { readonly kind: 'constant'; readonly rate: number }
  | { readonly kind: 'poisson'; readonly rate: number }
  | { readonly kind: 'ramp'; readonly from: number; readonly to: number }
  | { readonly kind: 'steps'; readonly steps: readonly { readonly rate: number; readonly durationS: number }[] }
  | { readonly kind: 'bursts'; readonly rate: number; readonly burstRate: number; readonly everyS: number; readonly burstS: number };

/** The plan a group is expected to get; 0 means "no such limit" (as in the gateway config). */
export interface ExpectedPlan {
  readonly rate: number;
  readonly burst: number;
  readonly quotaDay: number;
  readonly quotaMonth: number;
  readonly maxInflight: number;
}

export interface RequestSpec {
  readonly method: string;
  readonly path: string;
  /** Image files sent as bodies, in turn (none: no body). */
  readonly bodyFiles: readonly string[];
  readonly headers: Readonly<Record<string, string>>;
}

export type KeySource =
  | { readonly kind: 'admin'; readonly count: number; readonly plan: string }
  | { readonly kind: 'file'; readonly file: string }
  | { readonly kind: 'invalid'; readonly count: number };

export interface Group {
  readonly name: string;
  readonly kind: 'normal' | 'abusive' | 'invalid';
  /** Share of the arrival profile this group sends (weights are normalised over all groups). */
  readonly weight: number;
  readonly keys: KeySource;
  readonly plan: ExpectedPlan | undefined;
  readonly choice: 'uniform' | 'zipf';
  readonly zipfS: number;
  readonly request: RequestSpec;
}

export interface GeneratorLimits {
  /** worker_threads sending the schedule (1 is enough up to a few thousand requests/s). */
  readonly workers: number;
  readonly connections: number;
  readonly timeoutMs: number;
  /** A send later than this counts as late. */
  readonly lateMs: number;
  /** More late sends than this fraction: the generator was the bottleneck, the run is invalid. */
  readonly maxLateFraction: number;
  /** A generator event-loop delay p99 above this makes the run invalid too. */
  readonly maxLoopLagMs: number;
}

export interface OracleSettings {
  /** Clock and measurement jitter allowed around each send and answer time. */
  readonly toleranceMs: number;
  /** The gateway is taken to decide a request's limits within this long after it was sent (in-flight checks). */
  readonly decisionWindowMs: number;
}

export interface Scenario {
  readonly name: string;
  readonly target: string;
  readonly admin: { readonly url: string; readonly token: string } | undefined;
  readonly durationS: number;
  readonly profile: Profile;
  readonly seed: number;
  readonly groups: readonly Group[];
  readonly generator: GeneratorLimits;
  readonly oracle: OracleSettings;
  /** Response header naming the backend that served a request, where the target sends one. */
  readonly backendHeader: string | undefined;
  readonly gates: readonly string[];
}

const PROFILES = ['constant', 'poisson', 'ramp', 'steps', 'bursts'] as const;
const IMAGE_EXT = new Set(['.jpg', '.jpeg', '.png', '.webp', '.gif', '.avif', '.tif', '.tiff']);
const MAX_DURATION_S = 24 * 3600;
const MAX_RATE = 1_000_000;

export function loadScenario(file: string, env: NodeJS.ProcessEnv = process.env): Scenario {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`${file}: ${(err as Error).message}`]);
  }
  return parseScenario(text, dirname(file), env);
}

/** `baseDir` resolves relative body folders and key files. */
export function parseScenario(text: string, baseDir: string, env: NodeJS.ProcessEnv = process.env): Scenario {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) throw new ConfigError(doc.errors.map((e) => `yaml: ${e.message}`));
  const raw: unknown = doc.toJS();
  const r = new ConfigReader();
  if (!r.isObject(raw)) throw new ConfigError(['(top level): must be a mapping']);
  r.known(raw, '', ['name', 'target', 'admin', 'duration_s', 'arrival', 'seed', 'groups', 'abusive', 'invalid_keys', 'generator', 'oracle', 'backend_header', 'gates']);
  const target = r.requiredString(raw, 'target', '');
  if (target !== '') checkUrl(r, 'target', target);
  const adminObj = r.object(raw, 'admin', '');
  r.known(adminObj, 'admin', ['url', 'token', 'token_env']);
  const adminUrl = r.optionalString(adminObj, 'url', 'admin');
  if (adminUrl !== undefined) checkUrl(r, 'admin.url', adminUrl);
  const tokenEnv = r.optionalString(adminObj, 'token_env', 'admin');
  const token = r.optionalString(adminObj, 'token', 'admin') ?? (tokenEnv === undefined ? undefined : env[tokenEnv]);
  const durationS = r.number(raw, 'duration_s', '', 0, { min: 0.1, max: MAX_DURATION_S });
  if (raw.duration_s === undefined) r.fail('duration_s', 'is required');
  const profile = readProfile(r, r.object(raw, 'arrival', ''), durationS);
  if (raw.arrival === undefined) r.fail('arrival', 'is required');

  const groups: Group[] = [];
  const readList = (key: 'groups' | 'abusive', kind: 'normal' | 'abusive'): void => {
    r.array(raw, key, '').forEach((g, i) => {
      const path = `${key}[${i}]`;
      if (!r.isObject(g)) { r.fail(path, 'must be a mapping'); return; }
      groups.push(readGroup(r, g, path, kind, baseDir));
    });
  };
  readList('groups', 'normal');
  readList('abusive', 'abusive');
  if (raw.invalid_keys !== undefined) {
    const g = r.object(raw, 'invalid_keys', '');
    r.known(g, 'invalid_keys', ['weight', 'count', 'request']);
    groups.push({
      name: 'invalid', kind: 'invalid', weight: r.number(g, 'weight', 'invalid_keys', 1, { min: 0 }),
      keys: { kind: 'invalid', count: r.number(g, 'count', 'invalid_keys', 10, { min: 1, max: 1_000_000, integer: true }) },
      plan: undefined, choice: 'uniform', zipfS: 1, request: readRequest(r, r.object(g, 'request', 'invalid_keys'), 'invalid_keys.request', baseDir),
    });
  }
  if (groups.length === 0) r.fail('groups', 'at least one group (groups, abusive or invalid_keys) is required');
  const seen = new Set<string>();
  groups.forEach((g, i) => {
    if (seen.has(g.name)) r.fail(`groups[${i}].name`, `duplicate group name ${g.name}`);
    seen.add(g.name);
  });
  if (groups.length > 0 && groups.every((g) => g.weight === 0)) r.fail('groups', 'every weight is 0: nothing would be sent');
  const gen = r.object(raw, 'generator', '');
  r.known(gen, 'generator', ['workers', 'connections', 'timeout_ms', 'late_ms', 'max_late_fraction', 'max_loop_lag_ms']);
  const orc = r.object(raw, 'oracle', '');
  r.known(orc, 'oracle', ['tolerance_ms', 'decision_window_ms']);
  const gates = r.stringArray(raw, 'gates', '');
  const scenario: Scenario = {
    name: r.string(raw, 'name', '', 'scenario'),
    target,
    admin: adminUrl === undefined || token === undefined ? undefined : { url: adminUrl, token },
    durationS,
    profile,
    seed: r.number(raw, 'seed', '', 1, { integer: true, min: 0 }),
    groups,
    generator: {
      workers: r.number(gen, 'workers', 'generator', 1, { integer: true, min: 1, max: 64 }),
      connections: r.number(gen, 'connections', 'generator', 256, { integer: true, min: 1, max: 65_536 }),
      timeoutMs: r.number(gen, 'timeout_ms', 'generator', 10_000, { min: 1 }),
      lateMs: r.number(gen, 'late_ms', 'generator', 100, { min: 0 }),
      maxLateFraction: r.number(gen, 'max_late_fraction', 'generator', 0.05, { min: 0, max: 1 }),
      maxLoopLagMs: r.number(gen, 'max_loop_lag_ms', 'generator', 200, { min: 1 }),
    },
    oracle: {
      toleranceMs: r.number(orc, 'tolerance_ms', 'oracle', 5, { min: 0 }),
      decisionWindowMs: r.number(orc, 'decision_window_ms', 'oracle', 1000, { min: 0 }),
    },
    backendHeader: r.optionalString(raw, 'backend_header', '')?.toLowerCase(),
    gates,
  };
  if (r.errors.length > 0) throw new ConfigError(r.errors);
  return scenario;
}

function checkUrl(r: ConfigReader, path: string, v: string): void {
  let u: URL;
  try { u = new URL(v); } catch { r.fail(path, `must be an http:// URL, got ${JSON.stringify(v)}`); return; }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') r.fail(path, `must be an http:// or https:// URL, got ${JSON.stringify(v)}`);
}

function rate(r: ConfigReader, o: Obj, key: string, path: string, required = true): number {
  if (required && o[key] === undefined) r.fail(join(path, key), 'is required');
  return r.number(o, key, path, 0, { min: 0, max: MAX_RATE });
}

function readProfile(r: ConfigReader, o: Obj, durationS: number): Profile {
  const p = 'arrival';
  const kind = r.oneOf(o, 'profile', p, PROFILES, 'constant');
  switch (kind) {
    case 'constant':
    case 'poisson':
      r.known(o, p, ['profile', 'rate']);
      return { kind, rate: rate(r, o, 'rate', p) };
    case 'ramp':
      r.known(o, p, ['profile', 'from', 'to']);
      return { kind, from: rate(r, o, 'from', p), to: rate(r, o, 'to', p) };
    case 'steps': {
      r.known(o, p, ['profile', 'steps']);
      const steps = r.array(o, 'steps', p).map((s, i) => {
        const sp = `${p}.steps[${i}]`;
        if (!r.isObject(s)) { r.fail(sp, 'must be a mapping with rate and duration_s'); return { rate: 0, durationS: 0 }; }
        r.known(s, sp, ['rate', 'duration_s']);
        return { rate: rate(r, s, 'rate', sp), durationS: r.number(s, 'duration_s', sp, 0, { min: 0.001 }) };
      });
      if (steps.length === 0) r.fail(`${p}.steps`, 'at least one step is required');
      const total = steps.reduce((a, s) => a + s.durationS, 0);
      if (steps.length > 0 && Math.abs(total - durationS) > 1e-6) r.fail(`${p}.steps`, `durations add up to ${total} s, but duration_s is ${durationS}`);
      return { kind, steps };
    }
    case 'bursts': {
      r.known(o, p, ['profile', 'rate', 'burst_rate', 'every_s', 'burst_s']);
      const everyS = r.number(o, 'every_s', p, 10, { min: 0.01 });
      const burstS = r.number(o, 'burst_s', p, 1, { min: 0.001 });
      if (burstS > everyS) r.fail(`${p}.burst_s`, `must be <= every_s (${everyS}), got ${burstS}`);
      return { kind, rate: rate(r, o, 'rate', p), burstRate: rate(r, o, 'burst_rate', p), everyS, burstS };
    }
  }
}

function readPlan(r: ConfigReader, o: Obj, path: string): ExpectedPlan {
  r.known(o, path, ['rate', 'burst', 'quota_day', 'quota_month', 'max_inflight']);
  const planRate = r.number(o, 'rate', path, 0, { min: 0 });
  const burst = r.number(o, 'burst', path, planRate, { min: 0 });
  if (planRate > 0 && burst < 1) r.fail(`${path}.burst`, 'must be >= 1 when rate is set');
  return {
    rate: planRate,
    burst,
    quotaDay: r.number(o, 'quota_day', path, 0, { min: 0, integer: true }),
    quotaMonth: r.number(o, 'quota_month', path, 0, { min: 0, integer: true }),
    maxInflight: r.number(o, 'max_inflight', path, 0, { min: 0, integer: true }),
  };
}

function readGroup(r: ConfigReader, g: Obj, path: string, kind: 'normal' | 'abusive', baseDir: string): Group {
  r.known(g, path, ['name', 'weight', 'keys', 'plan', 'choice', 'zipf_s', 'request']);
  const name = r.requiredString(g, 'name', path);
  if (name !== '' && !/^[A-Za-z0-9_-]{1,64}$/.test(name)) r.fail(`${path}.name`, 'must be 1-64 of A-Z a-z 0-9 _ -');
  const keysObj = r.object(g, 'keys', path);
  const kp = `${path}.keys`;
  r.known(keysObj, kp, ['count', 'plan', 'file']);
  let keys: KeySource;
  const file = r.optionalString(keysObj, 'file', kp);
  if (file !== undefined) {
    if (keysObj.count !== undefined || keysObj.plan !== undefined) r.fail(kp, 'give either file, or count and plan (keys created through the admin API), not both');
    keys = { kind: 'file', file: resolvePath(baseDir, file) };
  } else {
    keys = { kind: 'admin', count: r.number(keysObj, 'count', kp, 1, { integer: true, min: 1, max: 1_000_000 }), plan: r.requiredString(keysObj, 'plan', kp) };
  }
  if (g.keys === undefined) r.fail(kp, 'is required (count and plan, or file)');
  if (g.plan === undefined) r.fail(`${path}.plan`, 'is required: the limits this group is expected to get');
  return {
    name,
    kind,
    weight: r.number(g, 'weight', path, 1, { min: 0 }),
    keys,
    plan: readPlan(r, r.object(g, 'plan', path), `${path}.plan`),
    choice: r.oneOf(g, 'choice', path, ['uniform', 'zipf'] as const, 'uniform'),
    zipfS: r.number(g, 'zipf_s', path, 1.1, { min: 0 }),
    request: readRequest(r, r.object(g, 'request', path), `${path}.request`, baseDir),
  };
}

function readRequest(r: ConfigReader, o: Obj, path: string, baseDir: string): RequestSpec {
  r.known(o, path, ['method', 'path', 'body_dir', 'options', 'headers']);
  const method = r.string(o, 'method', path, 'GET').toUpperCase();
  if (!/^[A-Z]{1,16}$/.test(method)) r.fail(`${path}.method`, `must be an HTTP method, got ${JSON.stringify(o.method)}`);
  const reqPath = r.string(o, 'path', path, '/');
  if (!reqPath.startsWith('/')) r.fail(`${path}.path`, `must start with /, got ${JSON.stringify(reqPath)}`);
  const headers: Record<string, string> = {};
  const h = r.object(o, 'headers', path);
  for (const [k, v] of Object.entries(h)) {
    if (typeof v !== 'string' && typeof v !== 'number') r.fail(`${path}.headers.${k}`, 'must be a string');
    else headers[k.toLowerCase()] = String(v);
  }
  if (o.options !== undefined) {
    if (!r.isObject(o.options)) r.fail(`${path}.options`, 'must be a mapping (sent as the X-Options header, JSON)');
    else headers['x-options'] = JSON.stringify(o.options);
  }
  let bodyFiles: string[] = [];
  const dir = r.optionalString(o, 'body_dir', path);
  if (dir !== undefined) {
    const abs = resolvePath(baseDir, dir);
    try {
      bodyFiles = readdirSync(abs).filter((f) => IMAGE_EXT.has(extname(f).toLowerCase())).sort().map((f) => joinPath(abs, f));
      if (bodyFiles.length === 0) r.fail(`${path}.body_dir`, `no image files (${[...IMAGE_EXT].join(' ')}) in ${abs}`);
    } catch (err) {
      r.fail(`${path}.body_dir`, (err as Error).message);
    }
  }
  return { method, path: reqPath, bodyFiles, headers };
}

function resolvePath(baseDir: string, p: string): string {
  return isAbsolute(p) ? p : joinPath(baseDir, p);
}
