import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'undici';
import { testConfig } from '../../test/harness/config.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { nginxMain, startNginx } from '../../test/harness/nginx.js';
import { startRedis } from '../../test/harness/redis.js';
import { startTestBackend, type TestBackend } from '../../test/harness/test-backend.js';
import type { LimitReqCheck } from '../store/types.js';
import { awaitNginxDecisions, awaitSluiceDecisions, judgeLimitReq, NGINX_JUDGE_LOG_FORMAT, tally, type Judgement, type JudgedRequest } from '../../test/harness/limit-req-judge.js';

// Issue 4, item 4: one scripted request trace (timestamps and keys) replayed against a
// real nginx running limit_req and against Sluice (memory store, then Redis store); every
// request must get the decision nginx's arithmetic gives: pass, delay (by how long), or
// reject.
//
// Judged on each server's own timestamps (issue 24), not the client's: nginx logs when
// it stamped each request and its $limit_req_status, Sluice logs when its store decided
// (on the clock it drains by), the delay and the outcome; the arithmetic
// (limit-req-math.ts, test/harness/limit-req-judge.ts) is run on those times, in the order
// each server decided, and must give every decision that server made. nginx agreeing is
// how the details the implementation relies on (a new key starts at excess 0, rejected
// requests of an earlier zone are not accounted, r/m truncation, delay=N) are checked
// against nginx itself; Sluice agreeing on its own clock is the equivalence. A busy
// machine moves the requests in time, and both servers are judged where they really
// were, so no run is too noisy to judge. The trace's schedule only makes sure every
// outcome occurs.

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
const NGINX_CONF = nginxMain(`
  keepalive_timeout 60s;
  keepalive_requests 100000;
  ${NGINX_JUDGE_LOG_FORMAT}
${Object.entries(ZONES).map(([name, z]) => `  limit_req_zone ${z.nginxKey} zone=${name}:1m rate=${z.rate};`).join('\n')}
  server {
    listen @@LISTEN@@;
    access_log @@RUN_DIR@@/decisions.log limit_req_judge;
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

interface Req { readonly i: number; readonly at: number; readonly path: string; readonly headers: Record<string, string> }

function buildTrace(): Req[] {
  const out: Req[] = [];
  /** n identical requests sent in one instant. */
  const burst = (at: number, n: number, path: string, headers: Record<string, string> = {}): void => {
    for (let k = 0; k < n; k++) out.push({ i: 0, at, path, headers });
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
  out.sort((x, y) => x.at - y.at);
  return out.map((r, i) => ({ ...r, i }));
}

/** The limit_req checks a request's route applies, as the gateway builds them. */
function checksFor(r: Req): LimitReqCheck[] {
  const route = ROUTES.find((x) => x.path === r.path);
  return (route?.rules ?? []).flatMap((rule) => {
    const z = ZONES[rule.zone]!;
    const value = z.key === 'client' ? '127.0.0.1' : r.headers[z.key.slice('header:'.length).toLowerCase()] ?? '';
    // An empty key is not limited.
    return value === '' ? [] : [{
      zone: rule.zone, key: value, rateMilli: z.rateMilli, burstMilli: rule.burst * 1000,
      delayMilli: (rule.nodelay ? rule.burst : rule.delay ?? 0) * 1000,
    }];
  });
}

// ---- replay ----

/** Sends the trace on its schedule, each request with its id; resolves when every answer is in. */
async function replay(baseUrl: string, trace: readonly Req[], run: string): Promise<void> {
  const pool = new Pool(baseUrl, { connections: 96, pipelining: 1, headersTimeout: 30_000, bodyTimeout: 30_000 });
  try {
    // Open the connections first, so the trace's bursts really arrive together.
    await Promise.all(Array.from({ length: 96 }, async () => (await pool.request({ method: 'GET', path: '/warm' })).body.dump()));
    const out: Promise<void>[] = [];
    const t0 = performance.now() + 50;
    for (let k = 0; k < trace.length;) {
      const at = trace[k]!.at;
      const wait = t0 + at - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      // Everything scheduled for this instant goes out in order, in this one tick.
      for (; k < trace.length && trace[k]!.at === at; k++) {
        const r = trace[k]!;
        out.push(pool.request({ method: 'GET', path: r.path, headers: { ...r.headers, 'x-request-id': `${run}-${r.i}` } }).then((res) => res.body.dump()));
      }
    }
    await Promise.all(out);
  } finally {
    await pool.close();
  }
}

describe('limit_req: the same trace against real nginx and Sluice, each judged on its own timestamps', () => {
  const trace = buildTrace();
  let backend: TestBackend;

  before(async () => { backend = await startTestBackend(); });
  after(async () => { await backend?.close(); });

  const judged = (run: string): JudgedRequest[] => trace.map((r) => ({ id: `${run}-${r.i}`, checks: checksFor(r) }));

  /** Every decision is the arithmetic's on the server's clock, and the trace made all three outcomes happen. */
  const assertJudged = (name: string, j: Judgement): void => {
    console.log(`[${name}] ${trace.length} requests: ${JSON.stringify(tally(j.verdicts))}; boundary cases taken as decided: ${j.boundary.length}${j.boundary.length > 0 ? ` (${j.boundary.join('; ')})` : ''}`);
    assert.deepEqual(j.mismatches, [], `${name} decided otherwise than nginx's arithmetic on its own timestamps`);
    const t = tally(j.verdicts);
    assert.ok(t.passed > 0 && t.delayed > 0 && t.rejected > 0, `${name}: the trace exercises pass, delay and reject: ${JSON.stringify(t)}`);
  };

  for (const [label, store] of [['with the memory store', 'memory'], ['with the Redis store (limit_req.lua, Redis TIME)', 'redis']] as const) {
    it(label, async () => {
      const nginx = await startNginx({ template: NGINX_CONF, files: { 'ok.json': '{"ok":true}' } });
      const redis = store === 'redis' ? await startRedis() : undefined;
      let gw: GatewayProcess | undefined;
      try {
        await replay(nginx.url, trace, 'nginx');
        // nginx stamps in wall-clock ms and drains by its monotonic ms: 1 ms apart at most.
        assertJudged('nginx', judgeLimitReq(judged('nginx'), await awaitNginxDecisions(join(nginx.dir, 'decisions.log'), judged('nginx').map((r) => r.id)), 1, 2));
        gw = await spawnGateway(sluiceConfig(backend.url, redis === undefined
          ? { kind: 'memory' }
          : { kind: 'redis', url: redis.url, timeout_ms: 2000, failure_policy: 'closed' }));
        await replay(gw.url, trace, store);
        // Sluice logs the very clock its store drained by: no tolerance.
        const j = judgeLimitReq(judged(store), await awaitSluiceDecisions(gw, judged(store).map((r) => r.id)), 0);
        assertJudged(`sluice (${store})`, j);
        // Sluice's refusals are its JSON errors (DESIGN.md), with limit_req_status as the status.
        const refusals = gw.lines.filter((l) => l.msg === 'request' && l.limit_req === 'rejected');
        assert.ok(refusals.length > 0 && refusals.every((l) => l.error === 'rate_limited' && l.status === (ROUTES.find((r) => r.path === l.path)!.status ?? 503)),
          JSON.stringify(refusals.slice(0, 3)));
      } finally {
        await gw?.stop();
        await nginx.stop();
        await redis?.stop();
      }
    });
  }
});
