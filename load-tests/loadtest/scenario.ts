import { readdirSync, readFileSync } from 'node:fs';
import { dirname, extname, isAbsolute, join as joinPath } from 'node:path';
import { parseDocument } from 'yaml';
import { schemaChecker } from '../../common/schema-check.js';
import { ConfigError } from '../../gateway/config/load.js';
import { ScenarioSchema, type GroupFile, type RequestFile, type ScenarioFile } from './scenario-schema.js';

// A load-test scenario: who sends what, how often, and what each sender's plan allows.
// The file is checked against scenario-schema.ts, then a semantic pass checks what the
// schema cannot say; a bad scenario gets every error of both at once, each naming its
// field (`groups[1].plan.rate: must be >= 0, got -1`). The semantic pass looks only at
// the parts the schema found sound, so one mistake is not reported twice.

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
  /** Units the plan charges for it (1 without costs). */
  readonly cost: number;
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
  /** The kinds of request the group sends, by weight: `mix`, or `request` alone. */
  readonly mix: readonly { readonly weight: number; readonly request: RequestSpec }[];
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

const IMAGE_EXT = new Set(['.jpg', '.jpeg', '.png', '.webp', '.gif', '.avif', '.tif', '.tiff']);

const check = schemaChecker(ScenarioSchema);

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
  const { value: f, errors: schemaErrors, clean } = check(doc.toJS());
  const errors = [...schemaErrors];
  if (clean('/arrival') && clean('/duration_s')) errors.push(...arrivalErrors(f));
  for (const [g, path] of soundParts(f, clean, '/plan')) {
    if (g.plan.rate > 0 && (g.plan.burst ?? g.plan.rate) < 1) errors.push(`${path}.plan.burst: must be >= 1 when rate is set`);
  }
  if (clean('/groups') && clean('/abusive') && clean('/invalid_keys')) errors.push(...groupErrors(f));
  const bodies = new Map<RequestFile, string[]>();
  const requests = soundParts(f, clean, '/request').map(([g, path]) => [g.request, `${path}.request`] as const);
  for (const [g, path] of soundParts(f, clean, '/mix')) {
    (g.mix ?? []).forEach((m, i) => requests.push([m.request, `${path}.mix[${i}].request`] as const));
    if (g.mix !== undefined && g.mix.every((m) => m.weight === 0)) errors.push(`${path}.mix: every weight is 0: nothing would be sent`);
  }
  if (f.invalid_keys !== undefined && clean('/invalid_keys/request')) requests.push([f.invalid_keys.request, 'invalid_keys.request']);
  for (const [req, path] of requests) {
    if (req.body_dir === undefined) continue;
    const found = bodyFiles(resolvePath(baseDir, req.body_dir));
    if (typeof found === 'string') errors.push(`${path}.body_dir: ${found}`);
    else bodies.set(req, found);
  }
  if (errors.length > 0) throw new ConfigError(errors);
  return toScenario(f, baseDir, env, bodies);
}

/** The groups (and abusive groups) whose part `under` ("/plan") the schema found sound, with their field paths. */
function soundParts(f: ScenarioFile, clean: (pointer: string) => boolean, under: string): [GroupFile, string][] {
  return (['groups', 'abusive'] as const).flatMap((key) => {
    const list: unknown = f[key];
    if (!Array.isArray(list)) return [];
    return list.flatMap((g: GroupFile, i) => (clean(`/${key}/${i}${under}`) ? [[g, `${key}[${i}]`] as [GroupFile, string]] : []));
  });
}

function arrivalErrors(f: ScenarioFile): string[] {
  const a = f.arrival;
  if (a.profile === 'steps') {
    const total = a.steps.reduce((sum, s) => sum + s.duration_s, 0);
    if (Math.abs(total - f.duration_s) > 1e-6) return [`arrival.steps: durations add up to ${total} s, but duration_s is ${f.duration_s}`];
  }
  if (a.profile === 'bursts' && a.burst_s > a.every_s) return [`arrival.burst_s: must be <= every_s (${a.every_s}), got ${a.burst_s}`];
  return [];
}

function groupErrors(f: ScenarioFile): string[] {
  const all = [...f.groups, ...f.abusive];
  if (all.length === 0 && f.invalid_keys === undefined) return ['groups: at least one group (groups, abusive or invalid_keys) is required'];
  const errors: string[] = [];
  const seen = new Set<string>(f.invalid_keys === undefined ? [] : ['invalid']);
  all.forEach((g, i) => {
    const path = i < f.groups.length ? `groups[${i}]` : `abusive[${i - f.groups.length}]`;
    if (seen.has(g.name)) errors.push(`${path}.name: duplicate group name ${g.name}`);
    seen.add(g.name);
  });
  if ([...all, ...(f.invalid_keys === undefined ? [] : [f.invalid_keys])].every((g) => g.weight === 0)) errors.push('groups: every weight is 0: nothing would be sent');
  return errors;
}

/** The images in `dir`, sorted, or why there are none. */
function bodyFiles(dir: string): string[] | string {
  try {
    const files = readdirSync(dir).filter((f) => IMAGE_EXT.has(extname(f).toLowerCase())).sort().map((f) => joinPath(dir, f));
    return files.length > 0 ? files : `no image files (${[...IMAGE_EXT].join(' ')}) in ${dir}`;
  } catch (err) {
    return (err as Error).message;
  }
}

function toScenario(f: ScenarioFile, baseDir: string, env: NodeJS.ProcessEnv, bodies: ReadonlyMap<RequestFile, string[]>): Scenario {
  const request = (r: RequestFile): RequestSpec => {
    const headers = Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k.toLowerCase(), String(v)]));
    if (r.options !== undefined) headers['x-options'] = JSON.stringify(r.options);
    return { method: r.method.toUpperCase(), path: r.path, bodyFiles: bodies.get(r) ?? [], headers, cost: r.cost };
  };
  const group = (g: GroupFile, kind: 'normal' | 'abusive'): Group => ({
    name: g.name,
    kind,
    weight: g.weight,
    // The schema's else branch requires plan and defaults count whenever file is absent.
    keys: g.keys.file !== undefined ? { kind: 'file', file: resolvePath(baseDir, g.keys.file) } : { kind: 'admin', count: g.keys.count!, plan: g.keys.plan! },
    plan: { rate: g.plan.rate, burst: g.plan.burst ?? g.plan.rate, quotaDay: g.plan.quota_day, quotaMonth: g.plan.quota_month, maxInflight: g.plan.max_inflight },
    choice: g.choice,
    zipfS: g.zipf_s,
    request: request(g.request),
    mix: g.mix === undefined ? [{ weight: 1, request: request(g.request) }] : g.mix.map((m) => ({ weight: m.weight, request: request(m.request) })),
  });
  const groups = [...f.groups.map((g) => group(g, 'normal')), ...f.abusive.map((g) => group(g, 'abusive'))];
  const inv = f.invalid_keys;
  if (inv !== undefined) {
    const r = request(inv.request);
    groups.push({ name: 'invalid', kind: 'invalid', weight: inv.weight, keys: { kind: 'invalid', count: inv.count }, plan: undefined, choice: 'uniform', zipfS: 1, request: r, mix: [{ weight: 1, request: r }] });
  }
  const token = f.admin?.token ?? (f.admin?.token_env === undefined ? undefined : env[f.admin.token_env]);
  const g = f.generator;
  return {
    name: f.name,
    target: f.target,
    admin: f.admin?.url === undefined || token === undefined ? undefined : { url: f.admin.url, token },
    durationS: f.duration_s,
    profile: profile(f.arrival),
    seed: f.seed,
    groups,
    generator: { workers: g.workers, connections: g.connections, timeoutMs: g.timeout_ms, lateMs: g.late_ms, maxLateFraction: g.max_late_fraction, maxLoopLagMs: g.max_loop_lag_ms },
    oracle: { toleranceMs: f.oracle.tolerance_ms, decisionWindowMs: f.oracle.decision_window_ms },
    backendHeader: f.backend_header?.toLowerCase(),
    gates: f.gates,
  };
}

function profile(a: ScenarioFile['arrival']): Profile {
  switch (a.profile) {
    case 'constant':
    case 'poisson':
      return { kind: a.profile, rate: a.rate };
    case 'ramp':
      return { kind: 'ramp', from: a.from, to: a.to };
    case 'steps':
      return { kind: 'steps', steps: a.steps.map((s) => ({ rate: s.rate, durationS: s.duration_s })) };
    case 'bursts':
      return { kind: 'bursts', rate: a.rate, burstRate: a.burst_rate, everyS: a.every_s, burstS: a.burst_s };
  }
}

function resolvePath(baseDir: string, p: string): string {
  return isAbsolute(p) ? p : joinPath(baseDir, p);
}
