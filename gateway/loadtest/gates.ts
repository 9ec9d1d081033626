import type { GateResult, LoadtestResult, RegressionVerdict, TargetResult } from './result.js';

// Gates: `[group.]metric op value[unit]`, e.g. `p99<50ms`, `errors<0.1%`,
// `over_admitted==0`, `pro.p99<=200ms`. Judged on the main target. Exit code: 0 every
// gate passed, 1 one failed, 3 the run itself is invalid (the generator was the bottleneck).

export const EXIT_OK = 0;
export const EXIT_GATE_FAILED = 1;
export const EXIT_USAGE = 2;
export const EXIT_INVALID = 3;

const LATENCY = ['p50', 'p90', 'p99', 'p999', 'max', 'mean'] as const;
const COUNTS = ['over_admitted', 'wrongly_refused', 'header_issues'] as const;
const METRICS = [...LATENCY, ...COUNTS, 'errors', 'rps'] as const;
type Metric = (typeof METRICS)[number];
const OPS = ['<=', '>=', '==', '!=', '<', '>'] as const;
type Op = (typeof OPS)[number];

export interface Gate {
  readonly expr: string;
  readonly group: string | undefined;
  readonly metric: Metric;
  readonly op: Op;
  readonly value: number;
  /** A count given in % (over_admitted<0.01%): judged as a share of the requests sent. */
  readonly share: boolean;
}

const GATE = /^\s*(?:([A-Za-z0-9_-]+)\.)?([a-z0-9_]+)\s*(<=|>=|==|!=|<|>)\s*([0-9]*\.?[0-9]+)\s*(us|µs|ms|s|%)?\s*$/;

/** Parses a gate, or returns why it cannot be one. */
export function parseGate(expr: string, groups: readonly string[]): Gate | string {
  const m = GATE.exec(expr);
  if (m === null) return `${expr}: expected [group.]metric op value[unit], e.g. p99<50ms, errors<0.1%, over_admitted==0`;
  const [, group, metric, op, num, unit] = m;
  if (!(METRICS as readonly string[]).includes(metric!)) return `${expr}: unknown metric ${metric} (expected one of ${METRICS.join(', ')})`;
  if (group !== undefined && !groups.includes(group)) return `${expr}: no group ${group} in the scenario (groups: ${groups.join(', ')})`;
  let value = Number(num);
  const isLatency = (LATENCY as readonly string[]).includes(metric!);
  if (isLatency) {
    if (unit === undefined || unit === '%') return `${expr}: a latency needs a unit (us, ms or s)`;
    value *= unit === 's' ? 1000 : unit === 'ms' ? 1 : 0.001;
  } else if (metric === 'errors') {
    if (unit !== undefined && unit !== '%') return `${expr}: errors is a fraction (0.001) or a percentage (0.1%)`;
    if (unit === '%') value /= 100;
  } else if (unit !== undefined && !(unit === '%' && metric !== 'rps')) {
    return `${expr}: ${metric} takes no unit${metric === 'rps' ? '' : ' (or % of the requests sent)'}`;
  }
  const share = unit === '%' && (COUNTS as readonly string[]).includes(metric!);
  if (share) value /= 100;
  return { expr: expr.trim(), group, metric: metric as Metric, op: op as Op, value, share };
}

function compare(a: number, op: Op, b: number): boolean {
  switch (op) {
    case '<': return a < b;
    case '<=': return a <= b;
    case '>': return a > b;
    case '>=': return a >= b;
    case '==': return a === b;
    case '!=': return a !== b;
  }
}

function measure(t: TargetResult, durationS: number, g: Gate): { value: number; of: number } {
  const grp = g.group === undefined ? undefined : t.groups.find((x) => x.group === g.group);
  const sent = grp?.sent ?? t.sent;
  const lat = grp?.latency ?? t.latency;
  switch (g.metric) {
    case 'p50': case 'p90': case 'p99': case 'p999': case 'max': case 'mean': return { value: lat[g.metric], of: sent };
    case 'errors': return { value: grp === undefined ? t.errorRate : grp.errors / Math.max(1, grp.sent), of: sent };
    case 'rps': return { value: grp === undefined ? t.answeredPerS : (grp.sent - grp.ambiguous) / durationS, of: sent };
    case 'over_admitted': return { value: grp?.overAdmitted ?? t.overAdmitted, of: sent };
    case 'wrongly_refused': return { value: grp?.wronglyRefused ?? t.wronglyRefused, of: sent };
    case 'header_issues': return { value: grp?.headerIssues ?? t.headerIssues, of: sent };
  }
}

function fmt(metric: Metric, v: number): string {
  if ((LATENCY as readonly string[]).includes(metric)) return `${v.toFixed(v < 10 ? 2 : 1)} ms`;
  if (metric === 'errors') return `${(v * 100).toFixed(3)}%`;
  if (metric === 'rps') return `${v.toFixed(1)}/s`;
  return String(v);
}

export function judgeGates(r: LoadtestResult, gates: readonly Gate[]): GateResult[] {
  const t = r.targets[0]!;
  return gates.map((g) => {
    const { value, of } = measure(t, r.durationS, g);
    const judged = g.share ? value / Math.max(1, of) : value;
    const passed = compare(judged, g.op, g.value);
    const shown = g.share ? `${(judged * 100).toFixed(3)}%` : fmt(g.metric, value);
    return { expr: g.expr, target: t.url, value: judged, passed, detail: `${g.group === undefined ? '' : `${g.group}: `}${g.metric} = ${shown}` };
  });
}

/** Zero over-admission is always judged, unless the gates already say something about it. */
export function withDefaultGates(exprs: readonly string[]): string[] {
  return exprs.some((e) => /^\s*over_admitted\s*[<>=!]/.test(e)) ? [...exprs] : ['over_admitted==0', ...exprs];
}

export function exitCode(r: LoadtestResult): number {
  if (!r.valid) return EXIT_INVALID;
  if (r.gates.some((g) => !g.passed)) return EXIT_GATE_FAILED;
  if (r.regression?.verdicts.some((v) => v.verdict === 'regression')) return EXIT_GATE_FAILED;
  return EXIT_OK;
}

/**
 * Against a saved result.json: a change counts only beyond its noise floor, which is
 * what two runs of the same build on this 2-core host differ by: latency percentiles
 * by 20% + 2 ms (p99) and 10% + 0.5 ms (p50), throughput by 5%, the error rate by
 * 0.1 percentage point; any rise in over-admission is a regression.
 */
export const NOISE = {
  p50: { rel: 0.10, abs: 0.5 },
  p99: { rel: 0.20, abs: 2 },
  answeredPerS: { rel: 0.05, abs: 0 },
  errorRate: { rel: 0, abs: 0.001 },
} as const;

export function regression(now: TargetResult, base: TargetResult): RegressionVerdict[] {
  const out: RegressionVerdict[] = [];
  const judge = (metric: string, b: number, n: number, floor: { rel: number; abs: number }, higherIsWorse: boolean, floorText: string): void => {
    const allowed = Math.abs(b) * floor.rel + floor.abs;
    const d = n - b;
    const worse = higherIsWorse ? d > allowed : -d > allowed;
    const better = higherIsWorse ? -d > allowed : d > allowed;
    const change = b === 0 ? (n === 0 ? '0' : `+${n.toFixed(3)}`) : `${d >= 0 ? '+' : ''}${((d / b) * 100).toFixed(1)}%`;
    out.push({ metric, baseline: b, now: n, change, floor: floorText, verdict: worse ? 'regression' : better ? 'improvement' : 'same' });
  };
  judge('p50_ms', base.latency.p50, now.latency.p50, NOISE.p50, true, '10% + 0.5 ms');
  judge('p99_ms', base.latency.p99, now.latency.p99, NOISE.p99, true, '20% + 2 ms');
  judge('answered_per_s', base.answeredPerS, now.answeredPerS, NOISE.answeredPerS, false, '5%');
  judge('error_rate', base.errorRate, now.errorRate, NOISE.errorRate, true, '0.1 percentage point');
  judge('over_admitted', base.overAdmitted, now.overAdmitted, { rel: 0, abs: 0 }, true, 'none');
  return out;
}
