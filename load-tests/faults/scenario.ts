import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { metricValue, scrapeMetrics } from '../../test/harness/metrics.js';
import { pollUntil } from '../../test/harness/poll.js';
import { failOpenBound } from '../../gateway/limits/fail-open-bound.js';
import { Oracle } from '../../gateway/loadtest/oracle.js';
import type { Sample } from '../../gateway/loadtest/samples.js';
import type { ExpectedPlan, Group } from '../../gateway/loadtest/scenario.js';
import type { ClientJob, ClientLine } from './client.js';
import type { Fleet } from './fleet.js';
import type { Fault } from './links.js';
import type { Host } from './netns.js';

// One scenario on a running fleet: a fresh customer key, the client on its own host
// sending an open-loop load to the gateways, faults injected and healed on a schedule
// (relative to the load's start), and every answer judged by the loadtest's per-key
// oracle. Also measured from the fleet itself: what the store counted (the customer's
// day counter on the master the sentinels name) against what the gateways say the store
// admitted (sluice_limit_decisions_total{result="allowed"}): the difference is what the
// store lost (failover) or charged for requests it did not decide (abandoned calls).

const CLIENT = fileURLToPath(new URL('./client.js', import.meta.url));
const PREFIX = 'sluice:';

export interface ScheduledFault {
  /** ms after the load starts. */
  readonly atMs: number;
  /**
   * How long it lasts before its heal (the heal of a kill is nothing), or 'load': until
   * the load's last answer came back, so no request reaches a gateway after the heal
   * (a busy host holds requests in its sockets for a second or more: a heal scheduled
   * 0.5 s after the last request was sent still met 43 of them).
   */
  readonly forMs: number | 'load';
  inject(fleet: Fleet): Promise<Fault>;
}

export interface ScenarioSpec {
  readonly name: string;
  /** The plan the key gets ('free' from the shipped config unless overrides say otherwise). */
  readonly plan: ExpectedPlan;
  readonly planName: string;
  /** Customer overrides written with the key (cust:{C} overrides), or none. */
  readonly overrides?: Readonly<Record<string, number>>;
  readonly ratePerS: number;
  readonly durationMs: number;
  /** Gateway hosts the client sends to (default: all). */
  readonly targets?: readonly Host[];
  readonly faults: readonly ScheduledFault[];
  /** Called while the load runs, after the faults are scheduled (measurements of its own); `healed` resolves with the epoch ms the last heal completed. */
  readonly during?: (fleet: Fleet, startEpochMs: number, healed: Promise<number>) => Promise<Record<string, number>>;
}

/** A fault as it happened, s after the load's start: injected at startS, its heal begun at healS and done at endS. */
export interface FaultWindow { readonly label: string; readonly startS: number; readonly healS: number; readonly endS: number }

export interface ScenarioResult {
  readonly name: string;
  readonly faults: FaultWindow[];
  readonly sent: number;
  readonly admitted: number;
  /** Most the plan allows over the load's span (burst + rate x span, capped by quotas). */
  readonly allowed: number;
  readonly overAdmitted: number;
  readonly overAdmittedBy: Record<string, number>;
  readonly wronglyRefused: number;
  /**
   * Admissions the store decided (an admit call, or a token lease the store granted), by
   * the gateways' access logs: a killed gateway's lines up to its death included.
   */
  readonly storeAdmitted: number;
  /** Decided by the fallback (fail open), by the same logs. */
  readonly fallbackAdmitted: number;
  /** Each process that admitted by its fallback: how many, and between when and when (s after the load's start, by request start). */
  readonly fallbackBy: readonly { readonly process: string; readonly admitted: number; readonly firstS: number; readonly lastS: number }[];
  /** The customer's day counter on the master the sentinels name, once it stopped moving after the load. */
  readonly storeCounted: number;
  /** Answers the client got that no access log holds (a killed gateway's last lines, unwritten). */
  readonly unlogged: number;
  /** status (or "no answer: code") -> count */
  readonly statuses: Record<string, number>;
  /** Per second of the load: admitted, refused, errors. */
  readonly timeline: { t: number; admitted: number; refused: number; errors: number }[];
  /** First breaker open after a fault started, and first close after its heal, ms (NaN: none). */
  readonly detectMs: number;
  readonly recoverMs: number;
  /**
   * 503 unavailable answers, by whether the gateway process that gave it (from its
   * access log) had already authenticated the key: `unseen` is documented (a key only in
   * Redis cannot be looked up while the store cannot be asked), `seen` is a bug (that
   * process held the key's identity and should have served it, stale if need be).
   */
  readonly unavailable: { readonly unseen: number; readonly seen: number };
  /** The slowest answer: as the client saw it, and as the gateway that gave it logged it. */
  readonly slowest?: { readonly clientMs: number; readonly sentMs: number; readonly status: number; readonly gatewayMs: number; readonly answeredBy: string };
  readonly extra: Record<string, number>;
  readonly samples: number;
}

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

/** A key of its own for the scenario's customer, written on the master (replicated like any admin write). */
async function provision(fleet: Fleet, spec: ScenarioSpec): Promise<string> {
  const key = `faults-${spec.name}-${Date.now().toString(36)}`;
  const customer = `c-${spec.name}-${Date.now().toString(36)}`;
  const master = (await fleet.masterIp())!;
  await fleet.cli(master, 6379, 'hset', `${PREFIX}key:${sha256(key)}`, 'customer', customer, 'plan', spec.planName, 'label', 'faults', 'created', String(Date.now()));
  if (spec.overrides !== undefined) await fleet.cli(master, 6379, 'hset', `${PREFIX}cust:{${customer}}`, 'plan', spec.planName, 'overrides', JSON.stringify(spec.overrides));
  return key;
}

/**
 * The customer's day counter, read once it has stopped moving: late answers given back,
 * expired token leases returned (every sweep interval), abandoned calls refused. Two
 * reads 500 ms apart that agree, within 10 s.
 */
async function settledCount(fleet: Fleet, keyDigest: string): Promise<number> {
  const read = async (): Promise<number> => {
    const master = (await fleet.masterIp())!;
    const customer = (await fleet.cli(master, 6379, 'hget', `${PREFIX}key:${keyDigest}`, 'customer')).trim();
    return Number((await fleet.cli(master, 6379, 'hget', `${PREFIX}rl:{${customer}}:q`, 'dn')).trim() || 0);
  };
  let last = await read();
  const stable = await pollUntil(async () => {
    const now = await read();
    const same = now === last;
    last = now;
    return same ? now : undefined;
  }, 10_000, 500);
  return stable.value ?? last;
}

async function fleetSum(fleet: Fleet, name: string, labels: Record<string, string>): Promise<number> {
  let sum = 0;
  for (const g of fleet.gateways) {
    if (g.gw.child.exitCode !== null || g.gw.child.signalCode !== null) continue;
    sum += metricValue(await scrapeMetrics(g.gw.adminUrl).catch(() => ''), name, labels);
  }
  return sum;
}

function logTime(l: Record<string, unknown>): number {
  return typeof l.time === 'string' ? Date.parse(l.time) : NaN;
}

/**
 * Waits (up to 20 s) for a healed fleet: the master the sentinels name is a master with
 * both replicas attached (after a failover or an AOF restart a write to a node about to be
 * demoted would be lost, and the scenario's key with it), and no live gateway's breaker is open.
 */
async function settled(fleet: Fleet): Promise<void> {
  await pollUntil(async () => {
    const m = await fleet.masterIp();
    if (m === undefined) return undefined;
    const info = await fleet.cli(m, 6379, 'info', 'replication');
    if (!info.includes('role:master') || !info.includes('connected_slaves:2')) return undefined;
    return (await fleetSum(fleet, 'sluice_store_breaker_open', {})) === 0 ? true : undefined;
  }, 20_000, 100);
}

export async function runScenario(fleet: Fleet, spec: ScenarioSpec): Promise<ScenarioResult> {
  const t0 = Date.now();
  await settled(fleet);
  const settleMs = Date.now() - t0;
  const key = await provision(fleet, spec);
  const keyDigest = sha256(key);
  const logsBefore = new Map(fleet.gateways.map((g) => [g.host.name, g.gw.lines.length]));
  const targets = (spec.targets ?? fleet.gatewayHosts()).map((h) => `http://${h.ip}:8080`);
  const tag = `f${Date.now().toString(36)}`;
  const job: ClientJob = { targets, path: '/v1/faults', keys: [key], ratePerS: spec.ratePerS, durationMs: spec.durationMs, connections: 16, timeoutMs: 5000, tag };
  const child = fleet.hosts.spawn(fleet.client, process.execPath, [CLIENT, JSON.stringify(job)]);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const samples: Sample[] = [];
  let startEpoch = NaN;
  let started!: () => void;
  const startedP = new Promise<void>((r) => { started = r; });
  const done = new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (text) => {
      const l = JSON.parse(text) as ClientLine;
      if ('start' in l) { startEpoch = l.start; started(); } else if ('done' in l) resolve();
      else samples.push(l);
    });
    child.once('exit', (code) => { if (code !== 0) reject(new Error(`client exited ${code}: ${stderr}`)); else resolve(); });
  });
  await startedP;
  const windows: FaultWindow[] = [];
  const faults = spec.faults.map(async (f) => {
    await sleepUntil(startEpoch + f.atMs);
    const injectedAt = Date.now();
    const fault = await f.inject(fleet);
    await (f.forMs === 'load' ? done.catch(() => {}) : sleepUntil(injectedAt + f.forMs));
    const healAt = Date.now();
    await fault.heal();
    windows.push({ label: fault.label, startS: (injectedAt - startEpoch) / 1000, healS: (healAt - startEpoch) / 1000, endS: (Date.now() - startEpoch) / 1000 });
  });
  const healed = Promise.all(faults).then(() => Date.now());
  const extra: Record<string, number> = spec.during === undefined ? {} : await spec.during(fleet, startEpoch, healed);
  await Promise.all([done, healed]);
  const loadDoneAt = Date.now();
  // Every breaker closed again (a scenario whose load ends before its heal sees them close on their own probes).
  await pollUntil(async () => ((await fleetSum(fleet, 'sluice_store_breaker_open', {})) === 0 ? true : undefined), 10_000, 100);
  const storeCounted = await settledCount(fleet, keyDigest);
  extra['ms: settling before the load'] = settleMs;
  extra['ms: after the load'] = Date.now() - loadDoneAt;

  const request = { method: 'GET', path: job.path, bodyFiles: [], headers: {}, cost: 1 };
  const group: Group = {
    name: spec.name, kind: 'normal', weight: 1, keys: { kind: 'file', file: '' }, plan: spec.plan, choice: 'uniform', zipfS: 1, request, mix: [{ weight: 1, request }],
  };
  const oracle = new Oracle([group], { toleranceMs: 5, decisionWindowMs: 1000 }, () => 0, () => 0, startEpoch);
  oracle.add(samples, Infinity);
  oracle.finish();
  // In-flight verdicts rest on the client's response end times: a request counts as still
  // holding its slot until the client saw its body end. This client shares a busy host,
  // and its own event-loop lag stretches those ends by tens to hundreds of ms, so it
  // "saw" 5 flights at once where the echo upstream answers in a millisecond and the
  // plan admits 5 a second (one run: 30 such verdicts, every one in-flight only). The
  // rate, burst and quota verdicts only get more lenient with late ends, so they stand.
  extra['in-flight-only verdicts (client timing, not judged)'] = oracle.groups[0]!.inflightOnly;
  oracle.dropInflightOnly();
  const g = oracle.groups[0]!;
  const statuses: Record<string, number> = {};
  const timeline: ScenarioResult['timeline'] = [];
  for (const s of samples) {
    const tag = s.status === 0 ? `no answer: ${s.error}` : s.status >= 500 ? `${s.status} ${s.code ?? ''}`.trim() : String(s.status);
    statuses[tag] = (statuses[tag] ?? 0) + 1;
    const sec = Math.floor(s.end / 1000);
    while (timeline.length <= sec) timeline.push({ t: timeline.length, admitted: 0, refused: 0, errors: 0 });
    const b = timeline[sec]!;
    if (s.status >= 200 && s.status < 300) b.admitted++; else if (s.status === 429) b.refused++; else b.errors++;
  }
  const { detectMs, recoverMs } = breakerTimes(fleet, logsBefore, windows, startEpoch);
  const lines = accessLines(fleet, logsBefore, tag);
  const storeAdmitted = lines.filter((a) => a.l.limit === 'allowed').length;
  const fallbackAdmitted = lines.filter((a) => a.l.limit === 'fallback_open').length;
  const fallbackBy = fallbackSpans(lines, startEpoch);
  const logged = new Set(lines.map((a) => a.l.request_id));
  const unlogged = samples.filter((x) => x.status > 0 && !logged.has(`${tag}-${x.i}`)).length;
  return {
    name: spec.name, faults: windows.sort((a, b) => a.startS - b.startS), sent: g.sent, admitted: g.admitted, allowed: g.allowed,
    overAdmitted: g.overAdmitted, overAdmittedBy: g.overAdmittedBy, wronglyRefused: g.wronglyRefused,
    storeAdmitted, fallbackAdmitted, fallbackBy, storeCounted, unlogged, statuses, timeline, detectMs, recoverMs,
    unavailable: unavailableByProcess(lines),
    slowest: slowestAnswer(samples, lines, tag), extra, samples: samples.length,
  };
}

interface AccessLine { readonly host: string; readonly l: Record<string, unknown> }

/** The run's access-log lines from every gateway, in the order they were written. */
function accessLines(fleet: Fleet, logsBefore: ReadonlyMap<string, number>, tag: string): AccessLine[] {
  return fleet.gateways.flatMap((g) => g.gw.lines.slice(logsBefore.get(g.host.name) ?? 0)
    .filter((l) => l.msg === 'request' && typeof l.request_id === 'string' && l.request_id.startsWith(`${tag}-`))
    .map((l) => ({ host: g.host.name, l })))
    .sort((a, b) => logTime(a.l) - logTime(b.l));
}

/** Per process, its admissions by the fallback and the span they fell in. */
function fallbackSpans(lines: readonly AccessLine[], startEpoch: number): ScenarioResult['fallbackBy'] {
  const by = new Map<string, { process: string; admitted: number; firstS: number; lastS: number }>();
  for (const { host, l } of lines) {
    if (l.limit !== 'fallback_open') continue;
    const process = `${host} pid ${String(l.pid)}`;
    const at = (logTime(l) - Number(l.duration_ms) - startEpoch) / 1000;
    const e = by.get(process) ?? { process, admitted: 0, firstS: at, lastS: at };
    e.admitted++;
    e.firstS = Math.min(e.firstS, at);
    e.lastS = Math.max(e.lastS, at);
    by.set(process, e);
  }
  return [...by.values()];
}

/** The run's 503 unavailable answers split by whether the answering process had authenticated the key before (its access log, in order). */
function unavailableByProcess(lines: readonly AccessLine[]): ScenarioResult['unavailable'] {
  /** pid -> when it first finished a request it had authenticated. */
  const knew = new Map<unknown, number>();
  let unseen = 0;
  let seen = 0;
  for (const { l } of lines) {
    if (l.customer !== undefined && !knew.has(l.pid)) knew.set(l.pid, logTime(l));
    if (l.status !== 503 || l.customer !== undefined) continue;
    // Strictly after: an answer in the same millisecond may have shared the failed lookup.
    if ((knew.get(l.pid) ?? Infinity) < logTime(l)) seen++; else unseen++;
  }
  return { unseen, seen };
}

/** The answer that took the client longest, and what the gateway that gave it logged for it (a busy host's lag shows as the difference). */
function slowestAnswer(samples: readonly Sample[], lines: readonly AccessLine[], tag: string): ScenarioResult['slowest'] {
  let worst: Sample | undefined;
  for (const x of samples) if (x.status > 0 && (worst === undefined || x.end - x.sent > worst.end - worst.sent)) worst = x;
  if (worst === undefined) return undefined;
  const found = lines.find((a) => a.l.request_id === `${tag}-${worst.i}`);
  return {
    clientMs: Math.round(worst.end - worst.sent), sentMs: Math.round(worst.sent), status: worst.status,
    gatewayMs: Number(found?.l.duration_ms ?? NaN), answeredBy: found === undefined ? '?' : `${found.host} pid ${String(found.l.pid)}`,
  };
}

/** From the gateways' logs: the first breaker open after the first fault began, and the first close after the last heal. */
function breakerTimes(fleet: Fleet, logsBefore: ReadonlyMap<string, number>, windows: readonly FaultWindow[], startEpoch: number): { detectMs: number; recoverMs: number } {
  if (windows.length === 0) return { detectMs: NaN, recoverMs: NaN };
  const faultAt = startEpoch + Math.min(...windows.map((w) => w.startS)) * 1000;
  const healAt = startEpoch + Math.max(...windows.map((w) => w.endS)) * 1000;
  let open = Infinity;
  let closed = Infinity;
  for (const g of fleet.gateways) {
    for (const l of g.gw.lines.slice(logsBefore.get(g.host.name) ?? 0)) {
      const t = logTime(l);
      if (l.msg === 'store breaker open: limits follow the failure policy' && t >= faultAt - 5) open = Math.min(open, t);
      if (l.msg === 'store breaker closed: limits enforced by the store again' && t >= healAt - 5) closed = Math.min(closed, t);
    }
  }
  return { detectMs: Number.isFinite(open) ? open - faultAt : NaN, recoverMs: Number.isFinite(closed) ? closed - healAt : NaN };
}

function sleepUntil(epochMs: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, epochMs - Date.now())));
}

/**
 * The same bound for the processes that did decide alone in a run, each over the span of
 * its own fallback admissions: the cut host's for the cut, and any other whose event loop
 * ran so late on a busy machine that its store calls missed their deadline (seen here:
 * gateways that were not cut, a second behind, admitting by their fallback too).
 */
export function failOpenBoundOf(p: ExpectedPlan, d: number, r: ScenarioResult): number {
  return r.fallbackBy.reduce((sum, f) => sum + failOpenBound(p, 1, d, f.lastS - f.firstS), 0);
}
