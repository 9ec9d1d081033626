import { readFileSync } from 'node:fs';
import type { GatewayProcess } from './gateway.js';
import { pollUntil } from './poll.js';
import { EVENT_TIMEOUT_MS } from './wait.js';
import { decideLimitReq, type ZoneState } from '../../gateway/store/limit-req-math.js';
import type { LimitReqCheck, LimitReqResult } from '../../gateway/store/types.js';

// Judges a server's limit_req decisions on its own timestamps, not the client's: each
// server (nginx, Sluice) logs, per request, when it decided and what; nginx's arithmetic
// (gateway/limit-req/limit-req-math.ts) is then run on those timestamps in the order the
// server decided, and every decision must be the one the arithmetic gives. However late
// a busy machine delivers a request, the server decided at the time it logged, so the
// judgement does not depend on how fast the client or the host was.

/** nginx's $limit_req_status in lower case; `none` where no zone applied (nginx logs `-`). */
export type LimitReqVerdict = 'passed' | 'delayed' | 'rejected' | 'none';

/** What a server logged about one request. */
export interface ServerDecision {
  /** The request id the client sent (X-Request-Id). */
  readonly id: string;
  /** When it decided, epoch ms on the server's clock. */
  readonly at: number;
  readonly verdict: LimitReqVerdict;
  /** The delay it set, when it logs one (Sluice); nginx logs only that it delayed. */
  readonly delayMs: number | undefined;
  /** From the decision to the end of the answer, ms: a delayed request was held at least its delay. */
  readonly heldMs: number;
  readonly status: number;
}

/** nginx's side: a log_format of exactly what judging needs, for `access_log <file> limit_req_judge;`. */
export const NGINX_JUDGE_LOG_FORMAT = "log_format limit_req_judge '$http_x_request_id $msec $request_time $status $limit_req_status';";

/**
 * nginx's decisions for `ids`, once its access log has them all: nginx logs a request
 * after it has answered it, so the last answers can reach the client before their lines.
 */
export async function awaitNginxDecisions(logFile: string, ids: readonly string[]): Promise<Map<string, ServerDecision>> {
  const r = await pollUntil(async () => {
    const d = nginxDecisions(logFile);
    return ids.every((id) => d.has(id)) ? d : undefined;
  }, EVENT_TIMEOUT_MS);
  return r.value ?? nginxDecisions(logFile);
}

/** Sluice's decisions for `ids`, once its access log has them all (a line follows the answer). */
export async function awaitSluiceDecisions(gw: GatewayProcess, ids: readonly string[]): Promise<Map<string, ServerDecision>> {
  const want = new Set(ids);
  for (const id of want) await gw.waitForLine((l) => l.msg === 'request' && l.request_id === id).catch(() => undefined);
  return sluiceDecisions(gw.lines);
}

/**
 * nginx's access log in NGINX_JUDGE_LOG_FORMAT. nginx stamps a request when its first
 * bytes are read, and limit_req decides in the same event-loop turn for a request that
 * arrives in one read (all of these), so `$msec - $request_time` is the decision's time.
 */
export function nginxDecisions(logFile: string): Map<string, ServerDecision> {
  const out = new Map<string, ServerDecision>();
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    const m = /^(\S+) (\d+\.\d{3}) (\d+\.\d{3}) (\d{3}) (\S+)$/.exec(line);
    if (m === null || m[1] === '-') continue;
    const heldMs = Math.round(Number(m[3]) * 1000);
    out.set(m[1]!, {
      id: m[1]!, at: Math.round(Number(m[2]) * 1000) - heldMs, heldMs, status: Number(m[4]), delayMs: undefined,
      verdict: m[5] === '-' ? 'none' : m[5]!.toLowerCase() as LimitReqVerdict,
    });
  }
  return out;
}

/** Sluice's side: its access-log lines (`limit_req`, `limit_req_at`, `limit_req_delay_ms`). */
export function sluiceDecisions(lines: readonly Record<string, unknown>[]): Map<string, ServerDecision> {
  const out = new Map<string, ServerDecision>();
  for (const l of lines) {
    if (l.msg !== 'request' || typeof l.request_id !== 'string') continue;
    const at = l.limit_req_at as number | undefined;
    const duration = l.duration_ms as number;
    out.set(l.request_id, {
      id: l.request_id, status: l.status as number,
      // No zone applied: the request's own start stands in (nothing is judged by it).
      at: at ?? 0, heldMs: duration, delayMs: l.limit_req_delay_ms as number | undefined,
      verdict: (l.limit_req as LimitReqVerdict | undefined) ?? 'none',
    });
  }
  return out;
}

/** One request of a replay: its id and the limit_req checks its route applies (none: unlimited). */
export interface JudgedRequest {
  readonly id: string;
  readonly checks: readonly LimitReqCheck[];
}

export interface Judgement {
  /** Decisions that differ from the arithmetic on the server's own timestamps. */
  readonly mismatches: string[];
  /** Requests whose decision flips within the clock tolerance: taken as the server decided them. */
  readonly boundary: string[];
  /** Every request's verdict, by id, as the server decided it. */
  readonly verdicts: Map<string, LimitReqVerdict>;
}

const verdictOf = (r: LimitReqResult): LimitReqVerdict => (!r.passed ? 'rejected' : r.delayMs > 0 ? 'delayed' : 'passed');

/**
 * Runs nginx's arithmetic over `requests` in the order the server decided them (by its
 * timestamps; ties in the order given) and compares each decision. `toleranceMs`: how far
 * the logged time may be from the clock the server drained by (0 for Sluice, which logs
 * that clock; 1 for nginx, whose wall-clock stamp and monotonic drain clock are truncated
 * to the millisecond apart). A request whose verdict changes within that window is a
 * boundary case, and the server's decision is followed. A delay the server logs must be
 * the arithmetic's; a delayed answer must have been held at least that long, less
 * `heldSlackMs` (nginx's delay timer and its request_time use those two clocks too).
 */
export function judgeLimitReq(requests: readonly JudgedRequest[], decided: ReadonlyMap<string, ServerDecision>, toleranceMs: number, heldSlackMs = 0): Judgement {
  const mismatches: string[] = [];
  const boundary: string[] = [];
  const verdicts = new Map<string, LimitReqVerdict>();
  const state = new Map<string, ZoneState>();
  const keyOf = (c: LimitReqCheck): string => `${c.zone}\0${c.key}`;
  const order = requests.map((r, i) => ({ r, i, d: decided.get(r.id) }));
  for (const { r, d } of order) if (d === undefined) mismatches.push(`${r.id}: the server logged no decision`);
  // Within one millisecond a server's order is not in its log; the arithmetic's outcomes
  // for requests of one key in one instant run passed, delayed (by growing delays), then
  // rejected, so that is the order ties are taken in (identical requests are interchangeable).
  const rank = (d: ServerDecision): number => ['none', 'passed', 'delayed', 'rejected'].indexOf(d.verdict);
  const logged = order.filter((o) => o.d !== undefined)
    .sort((a, b) => a.d!.at - b.d!.at || rank(a.d!) - rank(b.d!) || (a.d!.delayMs ?? a.d!.heldMs) - (b.d!.delayMs ?? b.d!.heldMs) || a.i - b.i);

  for (const { r, d } of logged) {
    const s = d!;
    verdicts.set(r.id, s.verdict);
    if (r.checks.length === 0) {
      if (s.verdict !== 'none') mismatches.push(`${r.id}: no zone applies, the server logged ${s.verdict}`);
      continue;
    }
    const at = (t: number): { res: LimitReqResult; writes: [string, ZoneState][] } => {
      const writes: [string, ZoneState][] = [];
      const res = decideLimitReq(r.checks, t, (c) => state.get(keyOf(c)), (c, excess, last) => { writes.push([keyOf(c), { excess, last }]); });
      return { res, writes };
    };
    const times = toleranceMs === 0 ? [s.at] : [s.at, s.at - toleranceMs, s.at + toleranceMs];
    const evals = times.map(at);
    const models = new Set(evals.map((e) => verdictOf(e.res)));
    const chosen = evals.find((e) => verdictOf(e.res) === s.verdict);
    const what = `${r.id} at ${s.at}: server ${s.verdict}${s.delayMs === undefined ? '' : ` ${s.delayMs} ms`}, `
      + `arithmetic ${evals.map((e) => `${verdictOf(e.res)} (excess ${e.res.excess}, delay ${e.res.delayMs} ms)`).join(' / ')}`;
    if (chosen === undefined) mismatches.push(what);
    else if (models.size > 1) boundary.push(what);
    const used = chosen ?? evals[0]!;
    for (const [k, v] of used.writes) state.set(k, v);
    if (chosen === undefined || s.verdict !== 'delayed') continue;
    const delays = evals.filter((e) => verdictOf(e.res) === 'delayed').map((e) => e.res.delayMs);
    if (s.delayMs !== undefined && (s.delayMs < Math.min(...delays) || s.delayMs > Math.max(...delays))) mismatches.push(`${what}: delay differs`);
    if (s.heldMs < Math.min(...delays) - heldSlackMs) mismatches.push(`${what}: answered after ${s.heldMs} ms, before its delay`);
  }
  return { mismatches, boundary, verdicts };
}

/** How many requests got each verdict: that a trace exercised what it was written for. */
export function tally(verdicts: ReadonlyMap<string, LimitReqVerdict>, ids?: readonly string[]): Record<LimitReqVerdict, number> {
  const t: Record<LimitReqVerdict, number> = { passed: 0, delayed: 0, rejected: 0, none: 0 };
  for (const id of ids ?? verdicts.keys()) {
    const v = verdicts.get(id);
    if (v !== undefined) t[v]++;
  }
  return t;
}
