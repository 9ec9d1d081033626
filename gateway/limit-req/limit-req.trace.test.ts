import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'undici';
import { testConfig } from '../../test/harness/config.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { nginxMain, startNginx } from '../../test/harness/nginx.js';
import { startRedis } from '../../test/harness/redis.js';
import { startTestBackend, type TestBackend } from '../../test/harness/test-backend.js';
import type { LimitReqCheck } from '../store/types.js';
import { delayFor, excessAt, type ZoneState } from '../store/limit-req-math.js';

// Issue 4, item 4: one scripted request trace (timestamps and keys) replayed against a
// real nginx running limit_req and against Sluice (memory store, then Redis store); every
// request must get the same decision from both: admit, delay, or reject.
//
// The trace is also run through the arithmetic (limit-req-math.ts) on its scheduled
// timestamps, and nginx must agree with that prediction too: it is how the details the
// implementation relies on (a new key starts at excess 0, rejected requests of an earlier
// zone are not accounted, r/m truncation, delay=N) are checked against nginx itself.
//
// Tolerance. A request's decision depends on its arrival time only through the drain
// `rate * ms / 1000`, and its excess is measured from an anchor: the last request on
// that bucket that found it new or empty (in between, every pass adds 1000 and time
// drains). So the decision can only flip between the servers if the two arrival times
// (this request's and its anchor's) move by more than the predicted distance to the
// edge, in ms of drain. Each request's timing error is measured in this run, on both
// servers: how late it was sent plus how long its answer took beyond the predicted
// delay (which bounds the time it took to reach the decision). A request is a boundary
// case when its margin to the burst edge, or its predicted delay's distance from the
// delay threshold, is within its own error + its anchor's + 2 ms (both servers decide on
// whole-millisecond clocks). A request sent in the same instant as its anchor can only
// arrive later, which only lowers its excess, so there only a refusal can flip. Boundary
// cases are exempt and printed; the trace keeps every edge at least 20 ms away, so
// normally none are. More than 10% means the machine was too busy to judge: the run is
// repeated on fresh servers, and the test fails if that happens JUDGE_ATTEMPTS times.

/** Response time above which a 200 counts as delayed; the trace's delays are all >= 100 ms. */
const DELAY_THRESHOLD_MS = 40;

interface ZoneSpec { readonly nginxKey: string; readonly key: string; readonly rate: string; readonly rateMilli: number }
const ZONES: Record<string, ZoneSpec> = {
  a: { nginxKey: '$http_x_api_key', key: 'header:X-API-Key', rate: '10r/s', rateMilli: 10_000 },
  b: { nginxKey: '$http_x_api_key', key: 'header:X-API-Key', rate: '100r/m', rateMilli: 1666 },
  c: { nginxKey: '$binary_remote_addr', key: 'client', rate: '5r/s', rateMilli: 5000 },
  d1: { nginxKey: '$http_x_api_key', key: 'header:X-API-Key', rate: '10r/s', rateMilli: 10_000 },
  d2: { nginxKey: '$http_x_tenant', key: 'header:X-Tenant', rate: '2r/s', rateMilli: 2000 },
  e: { nginxKey: '$http_x_api_key', key: 'header:X-API-Key', rate: '2r/s', rateMilli: 2000 },
  f: { nginxKey: '$http_x_api_key', key: 'header:X-API-Key', rate: '30r/m', rateMilli: 500 },
};

interface Rule { readonly zone: string; readonly burst: number; readonly nodelay?: boolean; readonly delay?: number }
interface RouteSpec { readonly path: string; readonly rules: readonly Rule[]; readonly status?: number }
const ROUTES: readonly RouteSpec[] = [
  { path: '/a', rules: [{ zone: 'a', burst: 5, nodelay: true }] },
  { path: '/b', rules: [{ zone: 'b', burst: 3 }] },
  { path: '/c', rules: [{ zone: 'c', burst: 4, delay: 2 }], status: 429 },
  { path: '/d', rules: [{ zone: 'd1', burst: 3, nodelay: true }, { zone: 'd2', burst: 1, nodelay: true }] },
  { path: '/e', rules: [{ zone: 'e', burst: 0 }] },
  { path: '/f', rules: [{ zone: 'f', burst: 2, delay: 1 }], status: 429 },
];

function nginxRule(r: Rule): string {
  // nginx refuses `burst=0`; leaving it out means 0.
  return `limit_req zone=${r.zone}${r.burst > 0 ? ` burst=${r.burst}` : ''}${r.nodelay ? ' nodelay' : r.delay !== undefined ? ` delay=${r.delay}` : ''};`;
}

// A static file, not `return 200`: return runs in the rewrite phase, before limit_req's
// preaccess phase, and would answer without limit_req ever looking at the request.
const JUDGE_ATTEMPTS = 5;

const NGINX_CONF = nginxMain(`
  keepalive_timeout 60s;
  keepalive_requests 100000;
${Object.entries(ZONES).map(([name, z]) => `  limit_req_zone ${z.nginxKey} zone=${name}:1m rate=${z.rate};`).join('\n')}
  server {
    listen @@LISTEN@@;
    default_type application/json;
${ROUTES.map((r) => `    location = ${r.path} { ${r.rules.map(nginxRule).join(' ')} ${r.status !== undefined ? `limit_req_status ${r.status};` : ''} alias @@RUN_DIR@@/ok.json; }`).join('\n')}
    location / { alias @@RUN_DIR@@/ok.json; }
  }
`);

function sluiceConfig(upstream: string, store: { kind: 'memory' } | { kind: 'redis'; url: string; timeout_ms: number; failure_policy: 'closed' }): Record<string, unknown> {
  return {
    ...testConfig({
      upstreams: [upstream],
      store,
      log: { access: false },
      routes: [
        ...ROUTES.map((r) => ({
          name: r.path, prefix: r.path, upstream: 'main', public: true,
          limit_req: r.rules.map((x) => ({ zone: x.zone, burst: x.burst, ...(x.nodelay ? { nodelay: true } : {}), ...(x.delay !== undefined ? { delay: x.delay } : {}) })),
          ...(r.status !== undefined ? { limit_req_status: r.status } : {}),
        })),
        { name: 'warm', prefix: '/', upstream: 'main', public: true },
      ],
    }),
    limit_req_zones: Object.fromEntries(Object.entries(ZONES).map(([name, z]) => [name, { key: z.key, rate: z.rate, size: '1m' }])),
  };
}

// ---- the trace ----

interface Req { readonly i: number; readonly at: number; readonly path: string; readonly headers: Record<string, string>; readonly group: number }

function buildTrace(): Req[] {
  const out: Req[] = [];
  let group = 0;
  /** n identical requests sent back to back; which of them a server refuses is its own order, so a group is compared as a multiset. */
  const burst = (at: number, n: number, path: string, headers: Record<string, string> = {}): void => {
    group++;
    for (let k = 0; k < n; k++) out.push({ i: 0, at, path, headers, group });
  };
  const stream = (from: number, every: number, n: number, path: string, headers: Record<string, string> = {}): void => {
    for (let k = 0; k < n; k++) burst(from + k * every, 1, path, headers);
  };
  const key = (k: string): Record<string, string> => ({ 'x-api-key': k });

  // /a 10r/s burst=5 nodelay: a burst over the limit, then a stream at 1.4x the rate, a
  // stream below the rate, one exactly at it, an idle key coming back, and no key at all.
  burst(0, 8, '/a', key('a1'));
  // 25r/s from a fresh key: +600 a request, the 9th at 4800 (20 ms of drain inside the
  // burst), the 10th at 5400 (40 ms over). Stopped there: later ones would pass and be
  // refused in turn ever closer to the edge.
  stream(600, 40, 10, '/a', key('a4'));
  stream(0, 150, 18, '/a', key('a2'));
  stream(55, 100, 25, '/a', key('a3'));
  burst(200, 20, '/a');
  burst(3000, 3, '/a', key('a1'));
  // /b 100r/m (1666 milli-requests/s) burst=3, no nodelay: everything past the first is delayed.
  burst(100, 5, '/b', key('b1'));
  burst(3500, 2, '/b', key('b1'));
  // /c by client address (every request comes from 127.0.0.1) 5r/s burst=4 delay=2, status 429.
  burst(0, 7, '/c');
  burst(1030, 1, '/c');
  burst(1130, 4, '/c');
  // 12.5r/s from an empty bucket: +600 a request, delayed from the 5th on, the 8th
  // refused 40 ms over the edge, the 9th passes 40 ms inside, the 10th refused again.
  stream(2530, 80, 10, '/c');
  // /d two zones: api key (10r/s burst 3) then tenant (2r/s burst 1). The tenant refuses
  // the third and fourth requests; had nginx charged a1's key zone for them, the
  // tenant-less burst that follows would be refused one request sooner.
  // The first two go out in the same instant; in either order both pass.
  burst(500, 1, '/d', { 'x-api-key': 'd1', 'x-tenant': 't1' });
  burst(500, 1, '/d', { 'x-api-key': 'd2', 'x-tenant': 't1' });
  burst(540, 2, '/d', { 'x-api-key': 'd1', 'x-tenant': 't1' });
  burst(560, 4, '/d', key('d1'));
  // /e 2r/s burst=0: a new key's first request passes (nginx starts it at excess 0).
  burst(0, 3, '/e', key('e1'));
  burst(700, 1, '/e', key('e1'));
  burst(1320, 1, '/e', key('e1'));
  burst(1400, 1, '/e', key('e1'));
  // /f 30r/m (500 milli-requests/s) burst=2 delay=1, status 429.
  burst(0, 5, '/f', key('f1'));
  out.sort((x, y) => x.at - y.at || x.group - y.group);
  return out.map((r, i) => ({ ...r, i }));
}

// ---- the model, on the scheduled timestamps ----

type Verdict = 'admit' | 'delay' | 'reject';
interface Prediction {
  readonly verdict: Verdict;
  readonly delayMs: number;
  /** ms of drain between the predicted excess and the burst edge, nearest over the zones reached. */
  readonly marginMs: number;
  /**
   * The request the excess is measured from (the last one that found its bucket empty or
   * new): the excess depends on the two arrival times, so on both requests' timing errors.
   * Undefined when that request went out in the same instant as this one: sent in order
   * in one tick, this one can only arrive later, which only lowers its excess, so only a
   * refusal can flip, and only by its own timing error.
   */
  readonly anchor: number | undefined;
  readonly oneSided: boolean;
}

interface ModelState extends ZoneState { readonly anchor: number }

function predict(trace: readonly Req[]): Prediction[] {
  const state = new Map<string, ModelState>();
  return trace.map((r) => {
    const route = ROUTES.find((x) => x.path === r.path)!;
    const checks: (LimitReqCheck & { excess: number; anchor: number })[] = [];
    let marginMs = Infinity;
    let anchor: number | undefined;
    let oneSided = true;
    const reached = (m: number, a: number, intra: boolean): void => {
      if (m < marginMs) { marginMs = m; anchor = intra ? undefined : a; oneSided = intra; }
    };
    for (const rule of route.rules) {
      const z = ZONES[rule.zone]!;
      const value = z.key === 'client' ? '127.0.0.1' : r.headers[z.key.slice('header:'.length).toLowerCase()] ?? '';
      if (value === '') continue;
      const c: LimitReqCheck = {
        zone: rule.zone, key: value, rateMilli: z.rateMilli, burstMilli: rule.burst * 1000,
        delayMilli: (rule.nodelay ? rule.burst : rule.delay ?? 0) * 1000,
      };
      const st = state.get(`${c.zone}/${c.key}`);
      const excess = excessAt(st, c.rateMilli, r.at);
      // Measured before the clamp at 0: a bucket drained well below empty is far from any edge.
      const raw = st === undefined ? -Infinity : st.excess - c.rateMilli * (r.at - st.last) / 1000 + 1000;
      const a = raw <= 0 ? r.i : st!.anchor;
      const intra = trace[a]!.at === r.at;
      // Arriving later lowers the excess: a pass in the same instant as its anchor cannot flip.
      const m = intra && raw <= c.burstMilli ? Infinity : Math.abs(raw - c.burstMilli) * 1000 / c.rateMilli;
      reached(m, a, intra);
      if (excess > c.burstMilli) return { verdict: 'reject', delayMs: 0, marginMs, anchor, oneSided };
      checks.push({ ...c, excess, anchor: a });
    }
    let delayMs = 0;
    for (const c of checks) {
      state.set(`${c.zone}/${c.key}`, { excess: c.excess, last: r.at, anchor: c.anchor });
      delayMs = Math.max(delayMs, delayFor(c.excess, c));
    }
    return { verdict: delayMs >= DELAY_THRESHOLD_MS ? 'delay' : 'admit', delayMs, marginMs, anchor, oneSided };
  });
}

// ---- replay ----

interface Observed { readonly status: number; readonly rtMs: number; readonly latenessMs: number; readonly body: string }

async function replay(baseUrl: string, trace: readonly Req[]): Promise<Observed[]> {
  const pool = new Pool(baseUrl, { connections: 96, pipelining: 1, headersTimeout: 10_000, bodyTimeout: 10_000 });
  try {
    // Open the connections first, so no request of the trace pays for a TCP handshake.
    const send = async (path: string, headers: Record<string, string> = {}): Promise<void> => {
      const res = await pool.request({ method: 'GET', path, headers });
      await res.body.text();
    };
    await Promise.all(Array.from({ length: 96 }, () => send('/warm')));
    // Then the limit_req path itself, on keys the trace never uses (and not /c, whose zone
    // counts by client address): the trace opens with 24 requests in one instant, which a
    // gateway started moments before answered 40 ms late beside the rest of the suite,
    // making them boundary cases (0 and 80 ms delays are 40 ms from the threshold).
    for (let round = 0; round < 3; round++) {
      await Promise.all(['/a', '/b', '/d', '/e', '/f'].flatMap((path) => Array.from({ length: 5 }, (_, i) => send(path, { 'x-api-key': `warm-${round}-${i}` }))));
    }
    const out: Promise<Observed>[] = [];
    const t0 = performance.now() + 50;
    for (let k = 0; k < trace.length;) {
      const at = trace[k]!.at;
      const wait = t0 + at - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait - 1));
      // The last millisecond spin-free: yield until the moment (bounded by the schedule).
      while (performance.now() < t0 + at) await new Promise((r) => setImmediate(r));
      // Everything scheduled for this instant goes out in order, in this one tick.
      for (; k < trace.length && trace[k]!.at === at; k++) {
        const r = trace[k]!;
        const sentAt = performance.now();
        const latenessMs = sentAt - (t0 + at);
        out.push(pool.request({ method: 'GET', path: r.path, headers: r.headers }).then(async (res) => {
          const body = await res.body.text();
          return { status: res.statusCode, rtMs: performance.now() - sentAt, latenessMs, body };
        }));
      }
    }
    return await Promise.all(out);
  } finally {
    await pool.close();
  }
}

function classify(o: Observed, route: RouteSpec): Verdict | `status ${number}` {
  if (o.status === (route.status ?? 503)) return 'reject';
  if (o.status !== 200) return `status ${o.status}`;
  return o.rtMs >= DELAY_THRESHOLD_MS ? 'delay' : 'admit';
}

/**
 * How far each request's arrival may be from its schedule, in ms, worst of the two runs:
 * how late it was sent, plus how long it took to answer (past the delay the model
 * predicts), which bounds the time it took to reach the decision.
 */
function timingErrors(runs: readonly (readonly Observed[])[], pred: readonly Prediction[]): number[] {
  return pred.map((p, i) => Math.max(...runs.map((run) => {
    const o = run[i]!;
    return o.latenessMs + Math.abs(o.rtMs - (o.status === 200 ? p.delayMs : 0));
  })));
}

/**
 * Groups with a boundary member, exempt as a whole (their members are interchangeable).
 * A request's excess compares its own arrival with its anchor's, so its margin (and its
 * delay's distance from the threshold) must exceed both timing errors, +2 ms because
 * both servers decide on whole-millisecond clocks.
 */
function boundaryGroups(trace: readonly Req[], pred: readonly Prediction[], errors: readonly number[]): Set<number> {
  const out = new Set<number>();
  trace.forEach((r, i) => {
    const p = pred[i]!;
    const e = errors[i]! + (p.anchor === undefined ? 0 : errors[p.anchor]!) + 2;
    if (p.marginMs <= e || Math.abs(p.delayMs - DELAY_THRESHOLD_MS) <= e) out.add(r.group);
  });
  return out;
}

function verdictsByGroup(trace: readonly Req[], verdicts: readonly string[]): Map<number, string> {
  const m = new Map<number, string[]>();
  trace.forEach((r, i) => { const g = m.get(r.group) ?? []; g.push(verdicts[i]!); m.set(r.group, g); });
  return new Map([...m].map(([g, v]) => [g, v.sort().join(',')]));
}

describe('limit_req: the same trace against real nginx and Sluice gets the same decisions', () => {
  const trace = buildTrace();
  const pred = predict(trace);
  let backend: TestBackend;

  before(async () => { backend = await startTestBackend(); });
  after(async () => { await backend?.close(); });

  /**
   * One judgement: the trace against a fresh nginx and a fresh Sluice (fresh zones on
   * both). Returns false when the run is too noisy to judge (more than 10% boundary
   * cases); a decision that differs outside the boundary fails at once.
   */
  const judge = async (name: string, store: 'memory' | 'redis'): Promise<boolean> => {
    const nginx = await startNginx({ template: NGINX_CONF, files: { 'ok.json': '{"ok":true}' } });
    const redis = store === 'redis' ? await startRedis() : undefined;
    let gw: GatewayProcess | undefined;
    try {
      const nginxRun = await replay(nginx.url, trace);
      gw = await spawnGateway(sluiceConfig(backend.url, redis === undefined
        ? { kind: 'memory' }
        : { kind: 'redis', url: redis.url, timeout_ms: 2000, failure_policy: 'closed' }));
      return compare(name, nginxRun, await replay(gw.url, trace));
    } finally {
      await gw?.stop();
      await nginx.stop();
      await redis?.stop();
    }
  };

  const compare = (name: string, nginxRun: readonly Observed[], run: readonly Observed[]): boolean => {
    const errors = timingErrors([nginxRun, run], pred);
    const exempt = boundaryGroups(trace, pred, errors);
    const jMs = Math.ceil(Math.max(...errors));
    const nv = nginxRun.map((o, i) => classify(o, ROUTES.find((x) => x.path === trace[i]!.path)!));
    const sv = run.map((o, i) => classify(o, ROUTES.find((x) => x.path === trace[i]!.path)!));
    const pv = pred.map((p) => p.verdict);
    const ng = verdictsByGroup(trace, nv);
    const sg = verdictsByGroup(trace, sv);
    const pg = verdictsByGroup(trace, pv);
    const exemptReqs = trace.filter((r) => exempt.has(r.group));
    console.log(`[${name}] ${trace.length} requests, worst timing error ${jMs} ms, exempt as boundary: ${exemptReqs.length}`
      + (exemptReqs.length > 0 ? ` (${exemptReqs.map((r) => `#${r.i} ${r.path}@${r.at}ms margin ${pred[r.i]!.marginMs.toFixed(0)} ms, error ${errors[r.i]!.toFixed(0)} ms`).join('; ')})` : ''));
    const mismatches: string[] = [];
    for (const [g, want] of pg) {
      if (exempt.has(g)) continue;
      const first = trace.find((r) => r.group === g)!;
      const label = `${first.path} @${first.at}ms ${JSON.stringify(first.headers)}`;
      if (ng.get(g) !== want) mismatches.push(`nginx vs model, ${label}: nginx [${ng.get(g)}], model [${want}]`);
      if (sg.get(g) !== ng.get(g)) mismatches.push(`${name} vs nginx, ${label}: sluice [${sg.get(g)}], nginx [${ng.get(g)}]`);
    }
    assert.deepEqual(mismatches, []);
    // Sluice's refusals are its JSON errors (DESIGN.md), with limit_req_status as the status.
    for (const o of run.filter((x) => x.status !== 200)) {
      assert.equal((JSON.parse(o.body) as { error: { code: string } }).error.code, 'rate_limited');
    }
    // The trace must really exercise all three outcomes, on both servers.
    for (const v of ['admit', 'delay', 'reject']) {
      assert.ok(nv.includes(v as Verdict) && sv.includes(v as Verdict), `no ${v} in the ${name} run`);
    }
    return exemptReqs.length <= trace.length / 10;
  };

  // A run the machine made too noisy to judge proves nothing either way: it is run again
  // (fresh servers), up to JUDGE_ATTEMPTS times, and only then fails.
  for (const [label, store] of [['with the memory store', 'memory'], ['with the Redis store (limit_req.lua, Redis TIME)', 'redis']] as const) {
    it(label, async () => {
      for (let attempt = 1; attempt <= JUDGE_ATTEMPTS; attempt++) {
        if (await judge(store, store)) return;
        console.log(`[${store}] attempt ${attempt}: too many boundary cases to judge${attempt < JUDGE_ATTEMPTS ? '; running the trace again' : ''}`);
      }
      assert.fail(`too many boundary cases in ${JUDGE_ATTEMPTS} runs: the machine is too busy to judge`);
    });
  }
});
