import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectRedis, probeClass, processCpuMs, redisDelta, redisSnapshot, type ProbeResult } from './cost.js';
import { exitCode, judgeGates, parseGate, regression, withDefaultGates, type Gate } from './gates.js';
import { runGenerator } from './generator.js';
import { gatewayPid, provisionKeys, type AdminTarget } from './keys.js';
import { Oracle } from './oracle.js';
import { Progress } from './progress.js';
import { renderHtml } from './report-html.js';
import { buildResult, type CostReport, type LoadtestResult } from './result.js';
import { buildSchedule } from './schedule.js';
import type { Scenario } from './scenario.js';

// One run, start to end: keys, schedule, load, oracle, cost, gates, files.

/** Requests each cost probe sends, one at a time, after the run. */
const PROBE_REQUESTS = 20;

export class UsageError extends Error {}

export interface RunOptions {
  readonly scenario: Scenario;
  /** The main target first, then each --compare URL: the same schedule goes to all, interleaved. */
  readonly targets: readonly { readonly url: string; readonly admin: AdminTarget | undefined }[];
  /** A saved result.json to judge this run against. */
  readonly baseline?: { readonly path: string; readonly result: LoadtestResult };
  readonly outDir?: string;
  readonly redisUrl?: string;
  readonly gatewayPids?: readonly number[];
  readonly asserts?: readonly string[];
  /** Where live progress goes; null: nowhere. */
  readonly progress?: NodeJS.WriteStream | null;
  /**
   * Called when the schedule starts (keys made, generator threads ready) with the moment
   * its t = 0 falls on, as performance.timeOrigin + performance.now().
   */
  readonly onStart?: (startAt: number) => void;
}

export function parseGates(s: Scenario, asserts: readonly string[]): Gate[] {
  const names = s.groups.map((g) => g.name);
  const parsed = withDefaultGates([...s.gates, ...asserts]).map((e) => parseGate(e, names));
  const bad = parsed.filter((g): g is string => typeof g === 'string');
  if (bad.length > 0) throw new UsageError(bad.join('\n'));
  return parsed as Gate[];
}

export function readBaseline(path: string): { path: string; result: LoadtestResult } {
  let result: LoadtestResult;
  try {
    result = JSON.parse(readFileSync(path, 'utf8')) as LoadtestResult;
  } catch (err) {
    throw new UsageError(`--compare ${path}: ${(err as Error).message}`);
  }
  if (result.version !== 1 || !Array.isArray(result.targets) || result.targets.length === 0) throw new UsageError(`--compare ${path}: not a sluice loadtest result.json`);
  return { path, result };
}

export async function runLoadtest(o: RunOptions): Promise<LoadtestResult> {
  const s = o.scenario;
  const gates = parseGates(s, o.asserts ?? []);
  const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const keys = await Promise.all(o.targets.map((t) => provisionKeys(s.groups, t.admin, runId)))
    .catch((err: unknown) => { throw new UsageError(`keys: ${(err as Error).message}`); });
  const schedule = buildSchedule(s, keys[0]!.map((k) => k.length));
  const startedAt = new Date();
  const costOf = (i: number): number => s.groups[schedule.group[i]!]!.mix[schedule.variant[i]!]!.request.cost;
  const oracles = o.targets.map(() => new Oracle(s.groups, s.oracle, (i) => schedule.group[i]!, (i) => schedule.key[i]!, startedAt.getTime(), costOf));

  const redis = o.redisUrl === undefined ? undefined : connectRedis(o.redisUrl);
  try {
    if (redis !== undefined) await redis.connect();
    const pids = o.gatewayPids ?? (o.targets[0]!.admin === undefined ? [] : [await gatewayPid(o.targets[0]!.admin.url)].filter((p): p is number => p !== undefined));
    const redis0 = redis === undefined ? undefined : await redisSnapshot(redis);
    const cpu0 = pids.map(processCpuMs);

    const progress = o.progress === null ? undefined : new Progress({
      durationMs: schedule.durationMs, intendedAt: (i) => schedule.at[i]!, overAdmitted: () => oracles.reduce((a, x) => a + x.overAdmitted, 0),
    }, o.progress ?? process.stderr);
    const gen = await runGenerator({
      targets: o.targets.map((t) => t.url),
      schedule,
      groups: s.groups.map((g) => g.mix.map((m) => m.request)),
      keys,
      limits: s.generator,
      backendHeader: s.backendHeader,
      onStart: o.onStart,
      onBatch: (samples, watermark, sent) => {
        progress?.onBatch(samples, sent);
        const per = oracles.map(() => [] as typeof samples[number][]);
        for (const x of samples) per[x.t]!.push(x);
        oracles.forEach((or, t) => or.add(per[t]!, watermark));
      },
    }).finally(() => progress?.stop());
    for (const or of oracles) or.finish();

    const result = buildResult({ scenario: s, targets: o.targets.map((t) => t.url), schedule, gen, oracles, startedAt });
    const requests0 = result.targets[0]!.sent;
    const cost: { -readonly [K in keyof CostReport]: CostReport[K] } = {};
    if (pids.length > 0) {
      const used = pids.map((p, k) => (processCpuMs(p) ?? NaN) - (cpu0[k] ?? NaN)).reduce((a, b) => a + b, 0);
      if (Number.isFinite(used)) cost.gateway = { pids, cpuUsPerRequest: (used * 1000) / Math.max(1, requests0) };
    }
    if (redis !== undefined && redis0 !== undefined) {
      // --redis is the main target's store: its cost is per request sent to the main target.
      const d = redisDelta(redis0, await redisSnapshot(redis));
      const probes = await costProbes(o, keys[0]!, oracles[0]!, redis);
      cost.redis = { commandsPerRequest: d.commands / Math.max(1, requests0), byCommand: d.byCommand, cpuUsPerRequest: (d.cpuMs * 1000) / Math.max(1, requests0), probes };
    }
    result.cost = Object.keys(cost).length === 0 ? null : cost;
    result.gates = judgeGates(result, gates);
    if (o.baseline !== undefined) result.regression = { baseline: o.baseline.path, verdicts: regression(result.targets[0]!, o.baseline.result.targets[0]!) };
    result.exitCode = exitCode(result);
    if (o.outDir !== undefined) {
      mkdirSync(o.outDir, { recursive: true });
      writeFileSync(join(o.outDir, 'result.json'), `${JSON.stringify(result, null, 2)}\n`);
      writeFileSync(join(o.outDir, 'report.html'), renderHtml(result));
    }
    return result;
  } finally {
    redis?.disconnect();
  }
}

/**
 * Commands per request by answer class, each from a short sequential probe on the main
 * target after the run: a fresh key of a normal group (admitted), the run's most refused
 * key (429), and a different unknown key each time (401: an attacker rotates keys, so
 * no negative cache saves the lookup).
 */
async function costProbes(o: RunOptions, keys: readonly (readonly string[])[], oracle: Oracle, redis: ReturnType<typeof connectRedis>): Promise<ProbeResult[]> {
  const s = o.scenario;
  const target = o.targets[0]!;
  const out: ProbeResult[] = [];
  const probe = async (cls: ProbeResult['class'], gi: number, keyFor: (i: number) => string): Promise<void> => {
    const req = s.groups[gi]!.request;
    const body = req.bodyFiles.length === 0 ? undefined : readFileSync(req.bodyFiles[0]!);
    out.push(await probeClass(redis, cls, new URL(req.path, target.url).href, req.method, req.headers, body, PROBE_REQUESTS, keyFor));
  };
  const normal = s.groups.findIndex((g) => g.kind === 'normal' && g.keys.kind === 'admin');
  if (normal >= 0 && target.admin !== undefined) {
    const [fresh] = await provisionKeys([s.groups[normal]!], target.admin, `probe${Date.now().toString(36)}`);
    await probe('admitted', normal, () => fresh![0]!);
  }
  let worst: { gi: number; key: number; refused: number } | undefined;
  s.groups.forEach((g, gi) => {
    if (g.kind === 'invalid') return;
    for (const v of oracle.keyVerdicts(gi)) if (v.refused > (worst?.refused ?? 0)) worst = { gi, key: v.key, refused: v.refused };
  });
  const refusedKey = worst === undefined ? undefined : keys[worst.gi]![worst.key]!;
  if (refusedKey !== undefined) await probe('429', worst!.gi, () => refusedKey);
  const first = s.groups.findIndex((g) => g.kind !== 'invalid');
  await probe('401', Math.max(0, first), () => `sk_${randomBytes(24).toString('base64url')}`);
  return out;
}
