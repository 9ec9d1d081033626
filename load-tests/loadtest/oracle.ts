import type { Sample } from './samples.js';
import type { ExpectedPlan, Group, OracleSettings } from './scenario.js';

// The exactness oracle: every answer judged, per key, against a reference model of the
// plan the scenario declares, fed with the client's own send and answer times.
//
// The gateway decides a request at some moment between its send and its answer, so the
// token bucket is tracked as two GCRA bounds (theoretical arrival time, TAT):
//  - lo: only the admissions the model accepts, each at its earliest possible moment
//    (send - tolerance). The gateway's real TAT is never below it, so a request admitted
//    while lo has no token even at the latest possible moment is surely over-admitted.
//  - hi: every admission (and every ambiguous answer: 503, no answer), each at its latest
//    moment (answer + tolerance, but never after the refusal being judged, since it was
//    decided first). The real TAT is never above it, so a 429 while hi had a token at
//    every moment it may have been decided is surely a wrong refusal. Refusals are judged
//    once all requests sent before their answer are in: any of those may have come first.
// Everything is in units: a request of cost c (the scenario's `cost`, what the plan's
// costs charge it; 1 without costs) needs c tokens (GCRA: TAT - t <= (burst - c) x T,
// then TAT += c x T) and c units of each quota, so a plan that mixes cheap and dear
// operations on one key is judged by what it charged, not by how many requests passed.
// Quotas count admitted units in UTC days and months. In-flight counts use the stated
// assumption that a request's limits are decided within decision_window_ms of its send;
// the report checks it against how fast refusals came back (see result.ts).

export type Outcome = 'admitted' | 'refused' | 'unauthorized' | 'ambiguous';

export function outcomeOf(status: number): Outcome {
  if (status === 429) return 'refused';
  if (status === 401 || status === 403) return 'unauthorized';
  // 503 may be a load-shed or a fail-closed store (nothing taken) or an upstream's answer
  // (a token taken); with no answer at all the request may never have reached the limiter.
  if (status === 0 || status === 503) return 'ambiguous';
  return 'admitted';
}

export interface HeaderIssue { readonly group: string; readonly key: number; readonly at: number; readonly problem: string }

export interface KeyVerdict {
  readonly key: number;
  sent: number;
  admitted: number;
  /** Units of the admitted requests. */
  units: number;
  refused: number;
  overAdmitted: number;
  /** Of those, the ones only the in-flight check found (it rests on the decision-window assumption). */
  inflightOnly: number;
  wronglyRefused: number;
  headerIssues: number;
  /** Most units the plan lets through over the span this key was active: burst + rate × span, capped by quotas. */
  allowed: number;
}

export interface GroupVerdict {
  readonly group: string;
  readonly kind: Group['kind'];
  sent: number;
  admitted: number;
  /** Units of the admitted requests (= admitted when every request costs 1). */
  units: number;
  refused: number;
  unauthorized: number;
  ambiguous: number;
  overAdmitted: number;
  overAdmittedBy: Record<string, number>;
  /** Of overAdmitted, the ones only the in-flight check found. */
  inflightOnly: number;
  wronglyRefused: number;
  headerIssues: number;
  allowed: number;
  /** Valid keys answered 401/403, or invalid keys let through. */
  authErrors: number;
}

/** Floating point slack on token counts (the gateway keeps fractional tokens). */
const EPS_TOKENS = 1e-6;

interface Flight { readonly sent: number; readonly decidedBy: number; readonly end: number; readonly legit: boolean }

interface Taken { readonly sent: number; readonly end: number; readonly units: number }

class KeyModel {
  tatLo = -Infinity;
  /** hi's TAT over the admissions surely decided before any refusal still to be judged. */
  tatHi = -Infinity;
  /** hi's other admissions: when each was decided, relative to a refusal, is still open. */
  recentHi: Taken[] = [];
  /** Latest answer among the admissions lo accepted: all of them were decided by then. */
  maxLegitEnd = -Infinity;
  quotaLegit = new Map<string, number>();
  quotaAll = new Map<string, number>();
  flights: Flight[] = [];
  pending: Sample[] = [];
  firstSent = Infinity;
  lastEnd = -Infinity;
  readonly v: KeyVerdict;
  constructor(key: number) {
    this.v = { key, sent: 0, admitted: 0, units: 0, refused: 0, overAdmitted: 0, inflightOnly: 0, wronglyRefused: 0, headerIssues: 0, allowed: 0 };
  }
}

function bump(m: Map<string, number>, k: string, units: number): void { m.set(k, (m.get(k) ?? 0) + units); }

interface SfItem { readonly name: string; readonly params: Readonly<Record<string, number>> }

/** A Structured Field List of String items with Integer parameters, as RateLimit and RateLimit-Policy are. */
export function parseSfList(v: string): SfItem[] | undefined {
  const items: SfItem[] = [];
  for (const part of v.split(',')) {
    const m = /^\s*"((?:[^"\\]|\\.)*)"((?:\s*;\s*[a-z*][a-z0-9_.*-]*=-?\d+)*)\s*$/.exec(part);
    if (m === null) return undefined;
    const params: Record<string, number> = {};
    for (const p of m[2]!.split(';').slice(1)) {
      const [k, n] = p.split('=');
      params[k!.trim()] = Number(n);
    }
    items.push({ name: m[1]!, params });
  }
  return items;
}

const DAY_W = 86_400;
const MONTH_W = 2_592_000;

export class Oracle {
  private readonly models: Map<number, KeyModel>[] = [];
  readonly groups: GroupVerdict[];
  readonly issues: HeaderIssue[] = [];
  private buffer: Sample[] = [];

  /**
   * `keyOf(i)` / `groupOf(i)`: the schedule's key and group of request i; `costOf(i)` its
   * units (1 by default). `startEpochMs` turns run times into calendar dates for the quotas.
   */
  constructor(
    private readonly groupDefs: readonly Group[],
    private readonly settings: OracleSettings,
    private readonly groupOf: (i: number) => number,
    private readonly keyOf: (i: number) => number,
    private readonly startEpochMs: number,
    private readonly costOf: (i: number) => number = () => 1,
  ) {
    this.groups = groupDefs.map((g) => {
      this.models.push(new Map());
      return {
        group: g.name, kind: g.kind, sent: 0, admitted: 0, units: 0, refused: 0, unauthorized: 0, ambiguous: 0, overAdmitted: 0, overAdmittedBy: {},
        inflightOnly: 0, wronglyRefused: 0, headerIssues: 0, allowed: 0, authErrors: 0,
      };
    });
  }

  get overAdmitted(): number { return this.groups.reduce((a, g) => a + g.overAdmitted, 0); }

  /**
   * Drops the over-admissions only the in-flight check found: called when the gateway
   * took longer than the decision window to answer even its refusals, so the in-flight
   * model's assumption does not hold for this run.
   */
  dropInflightOnly(): void {
    for (const [gi, g] of this.groups.entries()) {
      g.overAdmitted -= g.inflightOnly;
      for (const m of this.models[gi]!.values()) { m.v.overAdmitted -= m.v.inflightOnly; m.v.inflightOnly = 0; }
      g.inflightOnly = 0;
    }
  }

  /** Takes answers in any order; judges those sent before `watermark` (nothing sent earlier is still to come). */
  add(samples: readonly Sample[], watermark: number): void {
    for (const s of samples) this.buffer.push(s);
    this.buffer.sort((a, b) => a.sent - b.sent);
    let k = 0;
    while (k < this.buffer.length && this.buffer[k]!.sent < watermark) this.judge(this.buffer[k++]!);
    this.buffer = this.buffer.slice(k);
  }

  /** Judges everything left, once the run is over. */
  finish(): void {
    this.add([], Infinity);
    for (const [gi, models] of this.models.entries()) {
      for (const m of models.values()) {
        for (const p of m.pending) this.judgeRefusal(gi, m, p);
        m.pending = [];
        const plan = this.groupDefs[gi]!.plan;
        if (plan !== undefined && m.v.sent > 0) m.v.allowed = allowedOver(plan, m.lastEnd - m.firstSent);
        this.groups[gi]!.allowed += m.v.allowed;
      }
    }
  }

  keyVerdicts(gi: number): KeyVerdict[] {
    return [...this.models[gi]!.values()].map((m) => m.v);
  }

  private judge(s: Sample): void {
    const gi = this.groupOf(s.i);
    const def = this.groupDefs[gi]!;
    const g = this.groups[gi]!;
    const key = this.keyOf(s.i);
    let m = this.models[gi]!.get(key);
    if (m === undefined) { m = new KeyModel(key); this.models[gi]!.set(key, m); }
    const out = outcomeOf(s.status);
    const c = this.costOf(s.i);
    g.sent++;
    m.v.sent++;
    m.firstSent = Math.min(m.firstSent, s.sent);
    m.lastEnd = Math.max(m.lastEnd, s.end);
    if (out === 'admitted') { g.admitted++; m.v.admitted++; g.units += c; m.v.units += c; }
    if (out === 'refused') { g.refused++; m.v.refused++; }
    if (out === 'unauthorized') g.unauthorized++;
    if (out === 'ambiguous') g.ambiguous++;
    if (def.kind === 'invalid') {
      if (out === 'admitted') { g.overAdmitted++; m.v.overAdmitted++; g.overAdmittedBy.auth = (g.overAdmittedBy.auth ?? 0) + 1; g.authErrors++; }
      return;
    }
    if (out === 'unauthorized') { g.authErrors++; return; }
    const plan = def.plan!;
    // Refusals wait until every request sent before their answer has been seen.
    while (m.pending.length > 0 && m.pending[0]!.end + this.settings.toleranceMs < s.sent) this.judgeRefusal(gi, m, m.pending.shift()!);
    const low = Math.min(s.sent, ...m.pending.map((p) => p.sent));
    this.commitHi(m, plan, low);
    // A request answered before anything still to be judged was sent is in nobody's flight.
    m.flights = m.flights.filter((f) => f.end + this.settings.toleranceMs >= low - this.settings.toleranceMs);
    this.checkHeaders(gi, m, plan, s);
    const tol = this.settings.toleranceMs;
    const e = plan.rate > 0 ? 1000 / plan.rate : 0;
    const tau = (plan.burst - c) * e;
    const decidedBy = Math.min(s.head, s.sent + this.settings.decisionWindowMs);
    if (out === 'refused') {
      m.pending.push(s);
      m.pending.sort((a, b) => a.end - b.end);
      return;
    }
    const [day, month] = this.periods(s.sent);
    if (out === 'ambiguous') {
      m.recentHi.push({ sent: s.sent, end: s.end, units: c });
      bump(m.quotaAll, day, c); bump(m.quotaAll, month, c);
      if (plan.maxInflight > 0) m.flights.push({ sent: s.sent, decidedBy, end: s.end, legit: false });
      return;
    }
    // Admitted: is there any moment it could have been decided at which the plan had room?
    const latest = Math.max(s.end, m.maxLegitEnd) + tol;
    const reasons: string[] = [];
    if (plan.rate > 0 && m.tatLo - latest > tau + EPS_TOKENS * e) reasons.push('rate');
    if (plan.quotaDay > 0 && (m.quotaLegit.get(day) ?? 0) + c > plan.quotaDay) reasons.push('quota_day');
    if (plan.quotaMonth > 0 && (m.quotaLegit.get(month) ?? 0) + c > plan.quotaMonth) reasons.push('quota_month');
    if (plan.maxInflight > 0) {
      let sure = 0;
      for (const f of m.flights) if (f.legit && f.decidedBy <= s.sent && f.end - tol >= decidedBy) sure++;
      if (sure >= plan.maxInflight) reasons.push('inflight');
    }
    m.recentHi.push({ sent: s.sent, end: s.end, units: c });
    bump(m.quotaAll, day, c); bump(m.quotaAll, month, c);
    if (reasons.length > 0) {
      g.overAdmitted++;
      m.v.overAdmitted++;
      for (const r of reasons) g.overAdmittedBy[r] = (g.overAdmittedBy[r] ?? 0) + 1;
      if (reasons.length === 1 && reasons[0] === 'inflight') { g.inflightOnly++; m.v.inflightOnly++; }
      if (plan.maxInflight > 0) m.flights.push({ sent: s.sent, decidedBy, end: s.end, legit: false });
      return;
    }
    if (plan.rate > 0) m.tatLo = Math.max(m.tatLo, s.sent - tol) + c * e;
    m.maxLegitEnd = Math.max(m.maxLegitEnd, s.end);
    bump(m.quotaLegit, day, c); bump(m.quotaLegit, month, c);
    if (plan.maxInflight > 0) m.flights.push({ sent: s.sent, decidedBy, end: s.end, legit: true });
  }

  /** A 429 is wrong when no limit could have been exhausted at any moment it may have been decided. */
  private judgeRefusal(gi: number, m: KeyModel, s: Sample): void {
    const plan = this.groupDefs[gi]!.plan!;
    const tol = this.settings.toleranceMs;
    const c = this.costOf(s.i);
    const e = plan.rate > 0 ? 1000 / plan.rate : 0;
    const tau = (plan.burst - c) * e;
    const [day, month] = this.periods(s.sent);
    const decidedBy = Math.min(s.head, s.sent + this.settings.decisionWindowMs);
    let possible = false;
    if (plan.rate > 0) {
      // TAT(t) - t only falls as t grows while the set decided before t stays the same,
      // so the moments to try are the earliest one and each later send that joins the set.
      const from = s.sent - tol;
      const moments = [from, ...m.recentHi.map((j) => j.sent - tol).filter((t) => t > from && t <= s.end + tol)];
      for (const t of moments) {
        let tat = m.tatHi;
        const taken = m.recentHi.filter((j) => j.sent - tol <= t).map((j) => ({ at: Math.min(j.end + tol, t), units: j.units })).sort((a, b) => a.at - b.at);
        for (const x of taken) tat = Math.max(tat, x.at) + x.units * e;
        if (tat - t > tau) { possible = true; break; }
      }
    }
    if (plan.quotaDay > 0 && (m.quotaAll.get(day) ?? 0) + c > plan.quotaDay) possible = true;
    if (plan.quotaMonth > 0 && (m.quotaAll.get(month) ?? 0) + c > plan.quotaMonth) possible = true;
    if (plan.maxInflight > 0) {
      let maybe = 0;
      for (const f of m.flights) if (f.sent - tol <= decidedBy && f.end + tol >= s.sent) maybe++;
      if (maybe >= plan.maxInflight) possible = true;
    }
    if (!possible) {
      this.groups[gi]!.wronglyRefused++;
      m.v.wronglyRefused++;
    }
  }

  private checkHeaders(gi: number, m: KeyModel, plan: ExpectedPlan, s: Sample): void {
    const problems: string[] = [];
    if (s.status === 429) {
      const ra = s.retryAfter === undefined ? NaN : Number(s.retryAfter);
      if (!Number.isInteger(ra) || ra < 0) problems.push(`429 without a valid Retry-After (${s.retryAfter ?? 'none'})`);
      else if (s.code === 'rate_limited' && plan.rate > 0 && ra > Math.ceil(this.costOf(s.i) / plan.rate) + 1) {
        problems.push(`rate_limited Retry-After ${ra} s, but the request's ${this.costOf(s.i)} tokens come within ${Math.ceil(this.costOf(s.i) / plan.rate)} s`);
      } else if (s.code === 'quota_exceeded') {
        const untilMidnight = Math.ceil((86_400_000 - ((this.startEpochMs + s.sent) % 86_400_000)) / 1000);
        if (plan.quotaMonth === 0 && ra > untilMidnight + 1) problems.push(`quota_exceeded Retry-After ${ra} s, past the end of the UTC day (${untilMidnight} s)`);
      }
    }
    if (s.rateLimitPolicy !== undefined) {
      const items = parseSfList(s.rateLimitPolicy);
      if (items === undefined) problems.push(`RateLimit-Policy unparsable: ${s.rateLimitPolicy}`);
      else {
        for (const it of items) {
          const q = it.params.q;
          const w = it.params.w;
          if (w === DAY_W) { if (q !== plan.quotaDay) problems.push(`RateLimit-Policy day quota ${q}, plan says ${plan.quotaDay}`); }
          else if (w === MONTH_W) { if (q !== plan.quotaMonth) problems.push(`RateLimit-Policy month quota ${q}, plan says ${plan.quotaMonth}`); }
          else if (plan.rate > 0 && q !== Math.floor(plan.burst)) problems.push(`RateLimit-Policy burst ${q}, plan says ${plan.burst}`);
        }
      }
    }
    if (s.rateLimit !== undefined) {
      const items = parseSfList(s.rateLimit);
      if (items === undefined) problems.push(`RateLimit unparsable: ${s.rateLimit}`);
      else {
        for (const it of items) {
          const r = it.params.r;
          if (r === undefined || r < 0) { problems.push(`RateLimit item ${it.name} without r`); continue; }
          const cap = it.name.endsWith('-day') ? plan.quotaDay : it.name.endsWith('-month') ? plan.quotaMonth : plan.burst;
          if (cap > 0 && r > cap) problems.push(`RateLimit ${it.name} r=${r} above the plan's ${cap}`);
        }
      }
    }
    if (problems.length === 0) return;
    this.groups[gi]!.headerIssues += problems.length;
    m.v.headerIssues += problems.length;
    for (const p of problems) if (this.issues.length < 50) this.issues.push({ group: this.groups[gi]!.group, key: m.v.key, at: s.sent, problem: p });
  }

  /**
   * Folds into hi's TAT the admissions answered (plus tolerance) before `low` - tolerance,
   * `low` being the earliest send of any refusal still to be judged: each of them was
   * decided before any such refusal could be.
   */
  private commitHi(m: KeyModel, plan: ExpectedPlan, low: number): void {
    const tol = this.settings.toleranceMs;
    const done = m.recentHi.filter((j) => j.end + tol <= low - tol);
    if (done.length === 0) return;
    m.recentHi = m.recentHi.filter((j) => j.end + tol > low - tol);
    if (plan.rate <= 0) return;
    const e = 1000 / plan.rate;
    for (const j of done.sort((a, b) => a.end - b.end)) m.tatHi = Math.max(m.tatHi, j.end + tol) + j.units * e;
  }

  private periods(sent: number): [string, string] {
    const d = new Date(this.startEpochMs + sent).toISOString();
    return [`d${d.slice(0, 10)}`, `m${d.slice(0, 7)}`];
  }
}

/** The most a plan admits in `spanMs`: burst + rate × span, capped by the quotas. */
export function allowedOver(plan: ExpectedPlan, spanMs: number): number {
  let a = plan.rate > 0 ? Math.floor(plan.burst + plan.rate * Math.max(0, spanMs) / 1000) : Infinity;
  if (plan.quotaDay > 0) a = Math.min(a, plan.quotaDay);
  if (plan.quotaMonth > 0) a = Math.min(a, plan.quotaMonth);
  return Number.isFinite(a) ? a : 0;
}
