import type { Histogram } from 'hdr-histogram-js';
import type { GeneratorResult } from './generator.js';
import type { GroupVerdict, HeaderIssue, KeyVerdict, Oracle } from './oracle.js';
import { outcomeOf } from './oracle.js';
import type { Sample } from './samples.js';
import type { Schedule } from './schedule.js';
import type { ExpectedPlan, GeneratorLimits, OracleSettings, Scenario } from './scenario.js';

// result.json: everything the summary, the HTML report, the gates and a later
// regression comparison read. Latencies in ms, rates per second.

export interface Percentiles { readonly p50: number; readonly p90: number; readonly p99: number; readonly p999: number; readonly max: number; readonly mean: number }

export interface TimelinePoint {
  /** Bucket start, s after the run's start. */
  readonly t: number;
  readonly sent: number;
  readonly s2xx: number;
  readonly s429: number;
  readonly s4xx: number;
  readonly s5xx: number;
  readonly errors: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

export interface GroupResult extends Omit<GroupVerdict, 'overAdmittedBy'> {
  readonly overAdmittedBy: Record<string, number>;
  readonly plan: ExpectedPlan | null;
  readonly latency: Percentiles;
  readonly errors: number;
  readonly worstKeys: KeyVerdict[];
}

export interface TargetResult {
  readonly url: string;
  readonly sent: number;
  readonly answered: number;
  readonly sentPerS: number;
  readonly answeredPerS: number;
  readonly status: { readonly s2xx: number; readonly s3xx: number; readonly s4xx: number; readonly s401: number; readonly s429: number; readonly s5xx: number; readonly noAnswer: number };
  /** 5xx, no answer, and auth answers the scenario did not expect, over all sent. */
  readonly errorRate: number;
  readonly errorExamples: string[];
  readonly latency: Percentiles;
  readonly latencyUncorrected: Percentiles;
  /** The HDR percentile spectrum: latency at 0, 50, 75, 87.5, ... percent, corrected and not. */
  readonly spectrum: readonly { readonly percentile: number; readonly ms: number; readonly uncorrectedMs: number }[];
  readonly overAdmitted: number;
  /**
   * Whether in-flight over-admissions count: only when refusals (401, 429), which the
   * gateway answers as soon as it decides, came back within the decision window (p99).
   */
  readonly inflightJudged: boolean;
  /** p99 of the time from send to a refusal's answer: how late the gateway decided. */
  readonly refusalP99Ms: number;
  readonly wronglyRefused: number;
  readonly headerIssues: number;
  readonly headerIssueExamples: HeaderIssue[];
  readonly groups: GroupResult[];
  readonly timeline: TimelinePoint[];
  readonly backends: Record<string, number>;
}

export interface GeneratorReport {
  readonly workers: number;
  readonly sent: number;
  readonly late: number;
  readonly lateFraction: number;
  readonly lateness: Percentiles;
  readonly loopLagP99Ms: number;
  readonly loopLagMaxMs: number;
  readonly cpuMs: number;
  /** CPU over wall time: 1.0 = one core busy all run. */
  readonly cores: number;
  readonly wallMs: number;
  readonly limits: GeneratorLimits;
}

export interface GateResult { readonly expr: string; readonly target: string; readonly value: number | null; readonly passed: boolean; readonly detail: string }

export interface CostReport {
  readonly redis?: {
    readonly commandsPerRequest: number;
    readonly byCommand: Record<string, number>;
    readonly cpuUsPerRequest: number;
    readonly probes: readonly { readonly class: string; readonly requests: number; readonly ofClass: number; readonly commandsPerRequest: number; readonly byCommand: Record<string, number> }[];
  };
  readonly gateway?: { readonly pids: readonly number[]; readonly cpuUsPerRequest: number };
}

export interface RegressionVerdict { readonly metric: string; readonly baseline: number; readonly now: number; readonly change: string; readonly floor: string; readonly verdict: 'regression' | 'improvement' | 'same' }

export interface LoadtestResult {
  readonly version: 1;
  readonly scenario: string;
  readonly startedAt: string;
  readonly durationS: number;
  readonly valid: boolean;
  readonly invalidReasons: string[];
  readonly targets: TargetResult[];
  readonly generator: GeneratorReport;
  readonly oracle: OracleSettings;
  cost: CostReport | null;
  gates: GateResult[];
  regression: { readonly baseline: string; readonly verdicts: RegressionVerdict[] } | null;
  exitCode: number;
}

/** The HDR spectrum steps: each halves the distance to 100% (0, 50, 75, 87.5 ... 99.9999). */
const SPECTRUM_STEPS = 21;
const WORST_KEYS = 10;
/** At most this many timeline buckets: a day-long run gets 144 s buckets. */
const MAX_BUCKETS = 600;

export function percentiles(h: Histogram): Percentiles {
  const ms = (p: number): number => (h.totalCount === 0 ? 0 : h.getValueAtPercentile(p) / 1000);
  return { p50: ms(50), p90: ms(90), p99: ms(99), p999: ms(99.9), max: h.totalCount === 0 ? 0 : h.maxValue / 1000, mean: h.totalCount === 0 ? 0 : h.mean / 1000 };
}

function sortedPercentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function listPercentiles(xs: number[]): Percentiles {
  const s = xs.sort((a, b) => a - b);
  const mean = s.length === 0 ? 0 : s.reduce((a, b) => a + b, 0) / s.length;
  return { p50: sortedPercentile(s, 50), p90: sortedPercentile(s, 90), p99: sortedPercentile(s, 99), p999: sortedPercentile(s, 99.9), max: s[s.length - 1] ?? 0, mean };
}

export function isError(s: Sample, kind: string): boolean {
  if (s.status === 0 || s.status >= 500) return true;
  const out = outcomeOf(s.status);
  return kind === 'invalid' ? out !== 'unauthorized' && out !== 'refused' : out === 'unauthorized';
}

export interface BuildInput {
  readonly scenario: Scenario;
  readonly targets: readonly string[];
  readonly schedule: Schedule;
  readonly gen: GeneratorResult;
  readonly oracles: readonly Oracle[];
  readonly startedAt: Date;
}

export function buildResult(x: BuildInput): LoadtestResult {
  const { scenario, schedule, gen } = x;
  const byTarget: Sample[][] = x.targets.map(() => []);
  for (const s of gen.samples) byTarget[s.t]!.push(s);
  const durS = scenario.durationS;
  const bucketS = Math.max(1, Math.ceil(durS / MAX_BUCKETS));
  const targets = x.targets.map((url, t): TargetResult => {
    const samples = byTarget[t]!;
    const oracle = x.oracles[t]!;
    const status = { s2xx: 0, s3xx: 0, s4xx: 0, s401: 0, s429: 0, s5xx: 0, noAnswer: 0 };
    const errorExamples: string[] = [];
    let errors = 0;
    const nb = Math.ceil((schedule.durationMs / 1000 + 1) / bucketS) + 1;
    const buckets = Array.from({ length: nb }, () => ({ sent: 0, s2xx: 0, s429: 0, s4xx: 0, s5xx: 0, errors: 0, lat: [] as number[] }));
    const groupLat: number[][] = scenario.groups.map(() => []);
    const groupErr = scenario.groups.map(() => 0);
    const backends: Record<string, number> = {};
    const refusals: number[] = [];
    for (const s of samples) {
      const gi = schedule.group[s.i]!;
      const intended = schedule.at[s.i]!;
      const lat = s.head - intended;
      const c = s.status;
      if (c === 0) status.noAnswer++;
      else if (c < 300) status.s2xx++;
      else if (c < 400) status.s3xx++;
      else if (c === 429) status.s429++;
      else if (c === 401) status.s401++;
      else if (c < 500) status.s4xx++;
      else status.s5xx++;
      const err = isError(s, scenario.groups[gi]!.kind);
      if (err) {
        errors++;
        groupErr[gi]!++;
        if (errorExamples.length < 10) errorExamples.push(`${scenario.groups[gi]!.name}: ${c === 0 ? s.error : `status ${c}`}`);
      }
      const sb = buckets[Math.min(nb - 1, Math.floor(s.sent / 1000 / bucketS))]!;
      sb.sent++;
      const eb = buckets[Math.min(nb - 1, Math.floor(s.end / 1000 / bucketS))]!;
      if (c === 0) eb.errors++;
      else if (c < 300) eb.s2xx++;
      else if (c === 429) eb.s429++;
      else if (c >= 500) eb.s5xx++;
      else eb.s4xx++;
      buckets[Math.min(nb - 1, Math.floor(intended / 1000 / bucketS))]!.lat.push(lat);
      groupLat[gi]!.push(lat);
      if (s.backend !== undefined) backends[s.backend] = (backends[s.backend] ?? 0) + 1;
      if (c === 401 || c === 429) refusals.push(s.head - s.sent);
    }
    const refusalP99Ms = listPercentiles(refusals).p99;
    const inflightJudged = refusalP99Ms <= scenario.oracle.decisionWindowMs;
    if (!inflightJudged) oracle.dropInflightOnly();
    const used = (b: (typeof buckets)[number]): boolean => b.sent + b.lat.length + b.s2xx + b.s429 + b.s4xx + b.s5xx + b.errors > 0;
    while (buckets.length > 1 && !used(buckets[buckets.length - 1]!)) buckets.pop();
    const timeline = buckets.map((b, k): TimelinePoint => {
      const p = listPercentiles(b.lat);
      const per = (n: number): number => n / bucketS;
      return { t: k * bucketS, sent: per(b.sent), s2xx: per(b.s2xx), s429: per(b.s429), s4xx: per(b.s4xx), s5xx: per(b.s5xx), errors: per(b.errors), p50: p.p50, p90: p.p90, p99: p.p99, max: p.max };
    });
    const corrected = gen.corrected[t]!;
    const uncorrected = gen.uncorrected[t]!;
    const spectrum = Array.from({ length: SPECTRUM_STEPS }, (_, k) => {
      const p = 100 * (1 - 0.5 ** k);
      return { percentile: p, ms: corrected.totalCount === 0 ? 0 : corrected.getValueAtPercentile(p) / 1000, uncorrectedMs: uncorrected.totalCount === 0 ? 0 : uncorrected.getValueAtPercentile(p) / 1000 };
    });
    spectrum.push({ percentile: 100, ms: corrected.maxValue / 1000, uncorrectedMs: uncorrected.maxValue / 1000 });
    const groups = oracle.groups.map((g, gi): GroupResult => {
      const keys = oracle.keyVerdicts(gi);
      keys.sort((a, b) => b.overAdmitted - a.overAdmitted || b.wronglyRefused - a.wronglyRefused || b.admitted / Math.max(1, b.allowed) - a.admitted / Math.max(1, a.allowed));
      return { ...g, plan: scenario.groups[gi]!.plan ?? null, latency: listPercentiles(groupLat[gi]!), errors: groupErr[gi]!, worstKeys: keys.slice(0, WORST_KEYS) };
    });
    const wallS = Math.max(0.001, durS);
    return {
      url,
      sent: samples.length,
      answered: samples.length - status.noAnswer,
      sentPerS: samples.length / wallS,
      answeredPerS: (samples.length - status.noAnswer) / wallS,
      status,
      errorRate: samples.length === 0 ? 0 : errors / samples.length,
      errorExamples,
      latency: percentiles(corrected),
      latencyUncorrected: percentiles(uncorrected),
      spectrum,
      overAdmitted: oracle.overAdmitted,
      inflightJudged,
      refusalP99Ms,
      wronglyRefused: groups.reduce((a, g) => a + g.wronglyRefused, 0),
      headerIssues: groups.reduce((a, g) => a + g.headerIssues, 0),
      headerIssueExamples: oracle.issues.slice(0, 20),
      groups,
      timeline,
      backends,
    };
  });
  const lim = scenario.generator;
  const lateFraction = gen.sent === 0 ? 0 : gen.late / gen.sent;
  const invalidReasons: string[] = [];
  if (lateFraction > lim.maxLateFraction) {
    invalidReasons.push(`${(lateFraction * 100).toFixed(1)}% of sends left over ${lim.lateMs} ms late (limit ${(lim.maxLateFraction * 100).toFixed(1)}%): the generator, not the target, set the pace`);
  }
  if (gen.loopLagP99Ms > lim.maxLoopLagMs) {
    invalidReasons.push(`generator event-loop delay p99 ${gen.loopLagP99Ms.toFixed(0)} ms (limit ${lim.maxLoopLagMs} ms)`);
  }
  return {
    version: 1,
    scenario: scenario.name,
    startedAt: x.startedAt.toISOString(),
    durationS: durS,
    valid: invalidReasons.length === 0,
    invalidReasons,
    targets,
    generator: {
      workers: lim.workers, sent: gen.sent, late: gen.late, lateFraction, lateness: percentiles(gen.lateness),
      loopLagP99Ms: gen.loopLagP99Ms, loopLagMaxMs: gen.loopLagMaxMs, cpuMs: gen.cpuMs, cores: gen.cpuMs / Math.max(1, gen.wallMs), wallMs: gen.wallMs, limits: lim,
    },
    oracle: scenario.oracle,
    cost: null,
    gates: [],
    regression: null,
    exitCode: 0,
  };
}
