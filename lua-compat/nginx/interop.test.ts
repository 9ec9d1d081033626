import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { Pool } from 'undici';
import { stringify } from 'yaml';
import { parseConfig } from '../../gateway/config/load.js';
import { keySchema } from '../../gateway/store/key-schema.js';
import { admin, createKey } from '../../test/harness/admin.js';
import { sha256, testConfig } from '../../test/harness/config.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { metricValue, scrapeMetrics } from '../../test/harness/metrics.js';
import { startNginx, type NginxProcess } from '../../test/harness/nginx.js';
import { pollUntil } from '../../test/harness/poll.js';
import { startRedis, type RedisProcess } from '../../test/harness/redis.js';
import { waitUntil } from '../../test/harness/test-backend.js';
import { nginxModuleConfig } from '../../gateway/config/nginx-module-config.js';
import { EVENT_TIMEOUT_MS } from '../../test/harness/wait.js';

// A migration runs both edges on one Redis. Here: one real redis-server, one real nginx
// (2 workers) running lua-compat/nginx/sluice.lua from the nginx.conf.example this
// folder ships, and one real Sluice process, both in front of one backend, with the
// nginx module's config exported from the very Sluice config the gateway runs. Requests
// for one customer alternate between the edges; the budgets must come out as one.
//
// The store timeout is 2 s and the failure policy closed on both edges: on this shared
// 2-core machine a 50 ms timeout can expire under load, and a timed-out decision is not
// the shared one. Closed turns any such stall into a visible 503, never into silent
// over-admission.

const LUA_DIR = fileURLToPath(new URL('../../../lua-compat/nginx', import.meta.url));
const TEMPLATE = readFileSync(`${LUA_DIR}/nginx.conf.example`, 'utf8');
const CACHE_TTL_MS = 1000;
const k = keySchema('sluice:');

interface Outcome { edge: 'nginx' | 'sluice'; status: number; code: string | undefined; headers: Record<string, string>; body: string; sentAt: number; doneAt: number }

/** The backend: holds /hold/* until released, answers the rest with the headers it received. */
async function startBackend(): Promise<{ url: string; arrivals: () => number; held: () => number; maxHeld: () => number; releaseAll(): void; close(): Promise<void> }> {
  const held: ServerResponse[] = [];
  let arrivals = 0;
  let maxHeld = 0;
  const answer = (res: ServerResponse, body: string): void => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-request-id': 'from-backend' });
    res.end(body);
  };
  const server = createServer((req, res) => {
    arrivals++;
    req.resume();
    if (req.url?.startsWith('/hold')) {
      held.push(res);
      maxHeld = Math.max(maxHeld, held.length);
      res.once('close', () => { const i = held.indexOf(res); if (i !== -1) held.splice(i, 1); });
      return;
    }
    req.once('end', () => answer(res, JSON.stringify({ headers: req.headers })));
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    arrivals: () => arrivals,
    held: () => held.length,
    maxHeld: () => maxHeld,
    releaseAll: () => { for (const res of held.splice(0)) answer(res, '{}'); },
    close: () => new Promise<void>((resolve) => { for (const res of held.splice(0)) res.destroy(); server.close(() => resolve()); server.closeAllConnections(); }),
  };
}

describe('nginx+Lua and Sluice share one budget on one Redis', () => {
  let redis: RedisProcess;
  let backend: Awaited<ReturnType<typeof startBackend>>;
  let gw: GatewayProcess;
  let ngx: NginxProcess;
  let pools: Record<'nginx' | 'sluice', Pool>;
  let client: Redis;

  before(async () => {
    redis = await startRedis();
    backend = await startBackend();
    client = new Redis(redis.url);
    const cfg = testConfig({
      upstreams: [backend.url],
      store: { kind: 'redis', url: redis.url, timeout_ms: 2000, failure_policy: 'closed' },
      plans: {
        bucket: { rate: 10, burst: 20 },
        quota: { quota_day: 30 },
        busy: { quota_day: 2000 },
        inflight: { max_inflight: 3 },
        slow: { rate: 0.01, burst: 1 },
        open: { rate: 1000, burst: 1000 },
        // Sluice charges this plan's costs in units; the nginx module, which has none, one unit a request.
        priced: { quota_day: 40, costs: { base: 1, format_auto: 4 } },
      },
      keys: [
        { digest: sha256('k-bucket'), customer: 'c-bucket', plan: 'bucket' },
        { digest: sha256('k-quota'), customer: 'c-quota', plan: 'quota' },
        { digest: sha256('k-quota2'), customer: 'c-quota2', plan: 'quota' },
        { digest: sha256('k-busy'), customer: 'c-busy', plan: 'busy' },
        { digest: sha256('k-inflight'), customer: 'c-inflight', plan: 'inflight' },
        { digest: sha256('k-slow'), customer: 'c-slow', plan: 'slow' },
        { digest: sha256('k-priced'), customer: 'c-priced', plan: 'priced' },
      ],
      auth: { cache_ttl_ms: CACHE_TTL_MS, negative_cache_ttl_ms: CACHE_TTL_MS },
      log: { access: false },
    });
    const moduleConfig = nginxModuleConfig(parseConfig(stringify(cfg)));
    [gw, ngx] = await Promise.all([
      spawnGateway(cfg),
      startNginx({
        template: TEMPLATE,
        files: { 'sluice-nginx.json': JSON.stringify(moduleConfig) },
        vars: {
          WORKERS: '2',
          LUA_DIR,
          CONFIG: '@@RUN_DIR@@/sluice-nginx.json',
          UPSTREAM_SERVERS: `server ${new URL(backend.url).host};`,
        },
      }),
    ]);
    const opts = { connections: 64, pipelining: 1, headersTimeout: 10_000, bodyTimeout: 10_000 };
    pools = { nginx: new Pool(ngx.url, opts), sluice: new Pool(gw.url, opts) };
  });

  after(async () => {
    backend?.releaseAll();
    await Promise.all(Object.values(pools ?? {}).map((p) => p.close()));
    await gw?.stop();
    await ngx?.stop();
    client?.disconnect();
    await backend?.close();
    await redis?.stop();
  });

  const send = async (edge: 'nginx' | 'sluice', headers: Record<string, string>, path = '/v1/x'): Promise<Outcome> => {
    const sentAt = performance.now();
    const res = await pools[edge].request({ method: 'GET', path, headers });
    const body = await res.body.text();
    const doneAt = performance.now();
    const flat: Record<string, string> = {};
    for (const [name, v] of Object.entries(res.headers)) flat[name] = Array.isArray(v) ? v.join(', ') : String(v);
    const code = res.statusCode === 200 ? undefined : (JSON.parse(body) as { error: { code: string } }).error.code;
    return { edge, status: res.statusCode, code, headers: flat, body, sentAt, doneAt };
  };
  const edgeOf = (i: number): 'nginx' | 'sluice' => (i % 2 === 0 ? 'nginx' : 'sluice');

  /** nginx wrote no Lua error and the gateway never fell back from the store. */
  const assertBothHealthy = async (): Promise<void> => {
    const log = ngx.errorLog();
    assert.doesNotMatch(log, /\[(error|crit|alert|emerg)\]|sluice: (admit|credential lookup) failed/, `nginx error.log:\n${log}`);
    const m = await scrapeMetrics(gw.adminUrl);
    assert.equal(metricValue(m, 'sluice_limit_decisions_total', { result: 'store_closed' }), 0, 'no store-closed refusals in Sluice');
    assert.equal(metricValue(m, 'sluice_store_errors_total', { op: 'admit' }), 0, 'no store errors in Sluice');
  };

  it('token bucket 10/s burst 20: admitted across both edges is one bucket, burst + rate x elapsed (+-1)', async (t) => {
    for (let i = 0; i < 4; i++) await send(edgeOf(i), { 'x-api-key': 'k-bucket' });
    await client.del(k.bucket('c-bucket'), k.counters('c-bucket'));

    const outcomes: Promise<Outcome>[] = [];
    const fire = (): void => { outcomes.push(send(edgeOf(outcomes.length), { 'x-api-key': 'k-bucket' })); };
    const redisNow = async (): Promise<number> => { const [s, us] = await client.time(); return Number(s) * 1000 + Math.floor(Number(us) / 1000); };
    const redisT0 = await redisNow();
    const t0 = performance.now();
    // The burst at once, half to each edge (so each edge is seen admitting from the one
    // bucket); once those are answered (so no later request overtakes one of them),
    // ~150/s for 2.5 s, far above the refill, so every token is taken moments after it exists.
    for (let i = 0; i < 20; i++) fire();
    const redisT1 = Promise.race(outcomes).then(redisNow);
    const opening = await Promise.all(outcomes.slice());
    await new Promise<void>((resolve) => {
      const tick = setInterval(() => {
        if (performance.now() - t0 >= 2500 || outcomes.length >= 1000) { clearInterval(tick); resolve(); return; }
        for (let i = 0; i < 3; i++) fire();
      }, 20);
    });
    const results = await Promise.all(outcomes);

    const admitted = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status !== 200);
    assert.deepEqual([...new Set(refused.map((r) => `${r.status} ${r.code}`))], ['429 rate_limited']);
    const byEdge = { nginx: admitted.filter((r) => r.edge === 'nginx').length, sluice: admitted.filter((r) => r.edge === 'sluice').length };
    assert.deepEqual(opening.map((r) => r.status), Array(20).fill(200), 'the opening burst of 20 is admitted, 10 through each edge');
    // After it, the refilled tokens go to whichever edge's request reaches Redis first
    // (nginx, mostly: it answers faster); that both drew from one bucket and both refused is what matters.
    assert.ok(byEdge.nginx >= 10 && byEdge.sluice >= 10, `both edges admitted: ${JSON.stringify(byEdge)}`);
    assert.ok(refused.some((r) => r.edge === 'nginx') && refused.some((r) => r.edge === 'sluice'), 'both edges refused some');

    const elapsed = (Math.max(...results.map((r) => r.doneAt)) - t0) / 1000;
    const inner = (Math.max(...results.map((r) => r.sentAt)) - Math.min(...results.map((r) => r.doneAt))) / 1000;
    const report = `admitted ${admitted.length} of ${results.length} (nginx ${byEdge.nginx}, sluice ${byEdge.sluice}); `
      + `outer ${elapsed.toFixed(3)} s -> bound ${(20 + 10 * elapsed).toFixed(2)}; inner ${inner.toFixed(3)} s -> floor ${(20 + 10 * inner).toFixed(2)}`;
    t.diagnostic(report);
    assert.ok(admitted.length <= 20 + 10 * elapsed + 1, `over-admission: ${report}`);
    assert.ok(admitted.length >= 20 + 10 * inner - 1, `under-admission: ${report}`);

    // On Redis's clock: admitted + tokens left = burst + rate x (last - first admission).
    // Solved for the first admission, it must lie between a TIME before the first send and
    // one after the first response; one request too many or too few moves it by 100 ms.
    const [tokensLeft, tsLast] = (await client.hmget(k.bucket('c-bucket'), 'tokens', 'ts')).map(Number) as [number, number];
    const first = tsLast - (admitted.length + tokensLeft - 20) * 1000 / 10;
    const t1 = await redisT1;
    t.diagnostic(`Redis clock: first admission solved at ${(first - redisT0).toFixed(3)} ms, window 0..${t1 - redisT0} ms`);
    assert.ok(first >= redisT0 - 0.001 && first <= t1 + 0.001, `bucket accounting off: ${first - redisT0} ms, window 0..${t1 - redisT0} ms`);
    await assertBothHealthy();
  });

  it('day quota 30: 50 requests alternating between the edges admit exactly 30, one after another and all at once', async () => {
    // One after another: requests 1..30 pass (15 through each edge), 31..50 are refused on both.
    const serial: Outcome[] = [];
    for (let i = 0; i < 50; i++) serial.push(await send(edgeOf(i), { 'x-api-key': 'k-quota' }));
    assert.deepEqual(serial.map((r) => r.status), [...Array(30).fill(200), ...Array(20).fill(429)]);
    assert.ok(serial.slice(30).every((r) => r.code === 'quota_exceeded'));
    assert.equal(Number(await client.hget(k.counters('c-quota'), 'dn')), 30, 'the shared counter agrees');

    // All at once, racing on both edges.
    const racing = await Promise.all(Array.from({ length: 50 }, (_, i) => send(edgeOf(i), { 'x-api-key': 'k-quota2' })));
    assert.equal(racing.filter((r) => r.status === 200).length, 30);
    assert.ok(racing.filter((r) => r.status !== 200).every((r) => r.status === 429 && r.code === 'quota_exceeded'));
    assert.equal(Number(await client.hget(k.counters('c-quota2'), 'dn')), 30);
    const later = await Promise.all([send('nginx', { 'x-api-key': 'k-quota2' }), send('sluice', { 'x-api-key': 'k-quota2' })]);
    assert.deepEqual(later.map((r) => r.code), ['quota_exceeded', 'quota_exceeded']);
    await assertBothHealthy();
  });

  it('a plan priced in units: Sluice charges 5 for format: auto, nginx 1 a request, from one quota of 40 on the same keys', async () => {
    const auto = async (): Promise<number> => {
      const res = await pools.sluice.request({ method: 'POST', path: '/v1/images', headers: { 'x-api-key': 'k-priced', 'x-options': '{"format":"auto"}' }, body: '' });
      await res.body.dump();
      return res.statusCode;
    };
    for (let i = 0; i < 5; i++) assert.equal(await auto(), 200);
    assert.equal(Number(await client.hget(k.counters('c-priced'), 'dn')), 25);
    // nginx, at cost 1, gets exactly the 15 units left.
    const viaNginx: number[] = [];
    for (let i = 0; i < 20; i++) viaNginx.push((await send('nginx', { 'x-api-key': 'k-priced' })).status);
    assert.deepEqual(viaNginx, [...Array(15).fill(200), ...Array(5).fill(429)]);
    assert.equal(Number(await client.hget(k.counters('c-priced'), 'dn')), 40);
    assert.equal(await auto(), 429);
    assert.equal((await send('sluice', { 'x-api-key': 'k-priced' })).code, 'quota_exceeded');
    await assertBothHealthy();
  });

  it('a busy customer that Sluice leases: a day quota of 2,000 hammered through both edges admits exactly 2,000', async (t) => {
    // Token leases are on (the default): Sluice takes this customer's quota units in
    // batches, nginx one at a time. 32 connections on each edge send until their edge
    // refuses; units a lease held then go back, and the requests after that take them.
    const admitted = { nginx: 0, sluice: 0 };
    const codes = new Set<string>();
    const hammer = async (edge: 'nginx' | 'sluice'): Promise<void> => {
      for (;;) {
        const r = await send(edge, { 'x-api-key': 'k-busy' });
        if (r.status !== 200) { codes.add(`${r.status} ${r.code}`); return; }
        admitted[edge]++;
      }
    };
    const hits0 = metricValue(await scrapeMetrics(gw.adminUrl), 'sluice_limit_lease_hits_total');
    await Promise.all((['nginx', 'sluice'] as const).flatMap((edge) => Array.from({ length: 32 }, () => hammer(edge))));
    await waitUntil(async () => metricValue(await scrapeMetrics(gw.adminUrl), 'sluice_limit_lease_held_units') === 0, 5000, 'every lease given back');
    // One at a time, alternating, until both edges refuse twice in a row: nothing held is left.
    let refusedInARow = 0;
    for (let i = 0; refusedInARow < 4; i++) {
      const r = await send(edgeOf(i), { 'x-api-key': 'k-busy' });
      if (r.status === 200) { admitted[r.edge]++; refusedInARow = 0; } else { codes.add(`${r.status} ${r.code}`); refusedInARow++; }
    }
    const hits = metricValue(await scrapeMetrics(gw.adminUrl), 'sluice_limit_lease_hits_total') - hits0;
    t.diagnostic(`admitted nginx ${admitted.nginx}, sluice ${admitted.sluice} (${hits} from leases)`);
    assert.deepEqual([...codes], ['429 quota_exceeded']);
    assert.equal(admitted.nginx + admitted.sluice, 2000, 'exactly the quota, across both edges');
    assert.equal(Number(await client.hget(k.counters('c-busy'), 'dn')), 2000, 'the shared counter agrees');
    assert.ok(hits > 0 && admitted.nginx > 0, `Sluice admitted from leases, and nginx admitted too (${hits}, ${admitted.nginx})`);
    await assertBothHealthy();
  });

  it('max_inflight 3 holds across both edges, and nginx releases its leases when responses end', async () => {
    const pending: Promise<Outcome>[] = [];
    const hold = (edge: 'nginx' | 'sluice'): Promise<Outcome> => {
      const p = send(edge, { 'x-api-key': 'k-inflight' }, `/hold/${pending.length}`);
      pending.push(p);
      return p;
    };
    // Two held through nginx, one through Sluice, each in place before the next.
    for (const edge of ['nginx', 'nginx', 'sluice'] as const) {
      const before = backend.arrivals();
      void hold(edge);
      await waitUntil(() => backend.arrivals() === before + 1, 5000, `a held request through ${edge}`);
    }
    assert.equal(await client.zcard(k.leases('c-inflight')), 3);

    // Every further request, on either edge, is refused while three are held.
    const refused = await Promise.all(Array.from({ length: 10 }, (_, i) => send(edgeOf(i), { 'x-api-key': 'k-inflight' }, `/hold/x${i}`)));
    assert.deepEqual([...new Set(refused.map((r) => `${r.status} ${r.code}`))], ['429 concurrency_limited']);
    assert.equal(backend.held(), 3);

    // Ending them frees all three slots, two of them released by nginx's log phase.
    backend.releaseAll();
    assert.deepEqual((await Promise.all(pending)).map((r) => r.status), [200, 200, 200]);
    await waitUntil(async () => (await client.zcard(k.leases('c-inflight'))) === 0, 2000, 'every lease released');

    // A new wave of 20 alternating requests: exactly 3 get through.
    const before = backend.arrivals();
    const wave = Array.from({ length: 20 }, (_, i) => send(edgeOf(i), { 'x-api-key': 'k-inflight' }, `/hold/w${i}`));
    const waveRefused: Outcome[] = [];
    for (const p of wave) void p.then((r) => { if (r.status !== 200) waveRefused.push(r); });
    await waitUntil(() => backend.arrivals() - before + waveRefused.length === 20, 5000, 'the wave decided');
    assert.equal(backend.arrivals() - before, 3);
    assert.equal(backend.maxHeld(), 3, 'the backend never held a 4th request');
    backend.releaseAll();
    await Promise.all(wave);
    await waitUntil(async () => (await client.zcard(k.leases('c-inflight'))) === 0, 2000, 'every lease released');
    await assertBothHealthy();
  });

  it('a key revoked through Sluice\'s admin API is refused by nginx within its cache TTL', async (t) => {
    const { key, digest } = await createKey(gw.adminUrl, 'c-revoke', 'open');
    const burst = (edge: 'nginx' | 'sluice'): Promise<Outcome[]> => Promise.all(Array.from({ length: 8 }, () => send(edge, { 'x-api-key': key })));
    // Fill the caches (8 at once spread over the pool's connections, so both nginx
    // workers are likely to hold the key) right before the revocation, so nginx's
    // cached answer has nearly its whole TTL left.
    assert.deepEqual((await burst('nginx')).map((r) => r.status), Array(8).fill(200));
    assert.equal((await send('sluice', { 'x-api-key': key })).status, 200);

    const revoked = await admin(gw.adminUrl, 'DELETE', `/admin/keys/${digest}`);
    assert.equal(revoked.status, 204, revoked.text);
    const revokedAt = performance.now();
    // Sluice drops its cache on the published invalidation; nginx has no subscriber and waits out its TTL.
    const sluiceRefused = await pollUntil(async () => ((await send('sluice', { 'x-api-key': key })).status === 401 ? true : undefined), 1000);
    assert.equal(sluiceRefused.value, true, 'Sluice refuses the revoked key');

    // nginx: rounds of 8 concurrent requests until five rounds in a row are all refused.
    let lastStale: number | undefined;
    let allRefusedSince: number | undefined;
    let cleanRounds = 0;
    const deadline = revokedAt + CACHE_TTL_MS + 2000;
    while (cleanRounds < 5 && performance.now() < deadline) {
      // Paced, or the probes themselves would drain the plan's 1000/s bucket.
      await new Promise((r) => setTimeout(r, 25));
      const round = await burst('nginx');
      const at = performance.now() - revokedAt;
      assert.ok(round.every((r) => r.status === 200 || r.status === 401), `unexpected ${round.map((r) => `${r.status} ${r.body}`)}`);
      if (round.some((r) => r.status === 200)) { lastStale = at; cleanRounds = 0; allRefusedSince = undefined; continue; }
      allRefusedSince ??= at;
      cleanRounds++;
      assert.equal(JSON.parse(round[0]!.body).error.message, 'unknown or revoked API key');
    }
    t.diagnostic(`after the revocation: Sluice refused at ${sluiceRefused.elapsedMs.toFixed(0)} ms; nginx served the key from its cache `
      + `until ${lastStale === undefined ? 'never' : `${lastStale.toFixed(0)} ms`}, refused on every worker from ${allRefusedSince?.toFixed(0)} ms (cache TTL ${CACHE_TTL_MS} ms)`);
    assert.equal(cleanRounds, 5, 'nginx refuses the revoked key on every worker');
    assert.ok(allRefusedSince! <= CACHE_TTL_MS + 300, `nginx refused only from ${allRefusedSince} ms; TTL is ${CACHE_TTL_MS} ms`);
    await assertBothHealthy();
  });

  it("a key's terms hold on both edges: expiry and the end of a rotation grace (401), its allowlist (403), with the same answers", async () => {
    const compare = async (key: string): Promise<Outcome[]> => {
      const [a, b] = [await send('nginx', { 'x-api-key': key, 'x-request-id': 'terms-1' }), await send('sluice', { 'x-api-key': key, 'x-request-id': 'terms-1' })];
      assert.equal(a.status, b.status, `${a.body} vs ${b.body}`);
      // Refusals are the same bytes; an admitted request's body is the backend's echo of what each edge sent it.
      if (a.status !== 200) assert.equal(a.body, b.body);
      return [a, b];
    };
    const walled = await admin(gw.adminUrl, 'POST', '/admin/keys', { customer: 'c-walled', plan: 'open', allow: ['192.0.2.0/24', '2001:db8::/32'] });
    assert.equal((await compare(walled.body.key))[0]!.status, 403);
    assert.equal((await admin(gw.adminUrl, 'PATCH', `/admin/keys/${walled.body.digest}`, { allow: ['127.0.0.0/8'] })).status, 200);
    const other = await admin(gw.adminUrl, 'POST', '/admin/keys', { customer: 'c-walled', plan: 'open', allow: ['10.1.2.3', '127.0.0.1/32'] });
    assert.equal((await compare(other.body.key))[0]!.status, 200, 'inside its allowlist');
    // Far enough ahead that a busy host cannot let it pass before the first requests.
    const expiring = await admin(gw.adminUrl, 'POST', '/admin/keys', { customer: 'c-expiring', plan: 'open', expires_at: Date.now() + 5000 });
    assert.equal((await compare(expiring.body.key))[0]!.status, 200);
    const refused = await pollUntil(async () => {
      const [a, b] = [await send('nginx', { 'x-api-key': expiring.body.key, 'x-request-id': 'terms-1' }), await send('sluice', { 'x-api-key': expiring.body.key, 'x-request-id': 'terms-1' })];
      // nginx is asked first: the expiry may fall between the two, and then only nginx admits.
      if (a.status === 200 && b.status === 401) return undefined;
      assert.equal(a.status, b.status, `${a.body} vs ${b.body}`);
      if (a.status !== 200) assert.equal(a.body, b.body);
      return a.status === 401 ? a : undefined;
    }, EVENT_TIMEOUT_MS, 50);
    assert.equal(JSON.parse(refused.value!.body).error.message, 'API key expired', 'both edges refuse it, the cached identity too');
    const { digest } = await createKey(gw.adminUrl, 'c-rotated', 'open');
    const rotated = await admin(gw.adminUrl, 'POST', `/admin/keys/${digest}/rotate`, { grace_seconds: 0 });
    assert.equal(rotated.status, 201);
    assert.equal((await compare(rotated.body.key))[0]!.status, 200);
    await assertBothHealthy();
  });

  // Same request id on both edges, so the JSON bodies can be compared byte for byte.
  const compareEdges = async (headers: Record<string, string>, path = '/v1/x'): Promise<[Outcome, Outcome]> => {
    const a = await send('nginx', { ...headers, 'x-request-id': 'same-id-1' }, path);
    const b = await send('sluice', { ...headers, 'x-request-id': 'same-id-1' }, path);
    assert.equal(a.status, b.status);
    for (const name of ['content-type', 'cache-control', 'www-authenticate', 'x-request-id', 'ratelimit-policy']) {
      assert.equal(a.headers[name], b.headers[name], `${name} on ${a.status}`);
    }
    return [a, b];
  };
  /** Seconds fields may differ by one between two requests made a moment apart, when a second boundary falls between them. */
  const closeSeconds = (x: string | undefined, y: string | undefined, what: string): void => {
    assert.ok(x !== undefined && y !== undefined, `${what} present on both`);
    const nums = (s: string): number[] => [...s.matchAll(/t=(\d+)|^(\d+)$/g)].map((m) => Number(m[1] ?? m[2]));
    assert.equal(x.replace(/t=\d+/g, 't=_'), y.replace(/t=\d+/g, 't=_'), what);
    nums(x).forEach((v, i) => assert.ok(Math.abs(v - nums(y)[i]!) <= 1, `${what}: ${x} vs ${y}`));
  };

  it('401 and 429 answers are the same from both edges: status, JSON body, headers', async () => {
    const unauthorized: Record<string, string>[] = [{}, { 'x-api-key': 'no-such-key' }, { authorization: 'Bearer no-such-key' }];
    for (const headers of unauthorized) {
      const [a, b] = await compareEdges(headers);
      assert.equal(a.status, 401);
      assert.equal(a.body, b.body);
    }

    // Quota used up in the quota test above.
    const [qa, qb] = await compareEdges({ 'x-api-key': 'k-quota' });
    assert.equal(qa.status, 429);
    assert.equal(qa.body, qb.body);
    assert.equal(JSON.parse(qa.body).error.code, 'quota_exceeded');
    closeSeconds(qa.headers.ratelimit, qb.headers.ratelimit, 'RateLimit');
    closeSeconds(qa.headers['retry-after'], qb.headers['retry-after'], 'Retry-After');

    // One token per 100 s: the first request takes it, then both edges refuse.
    assert.equal((await send('sluice', { 'x-api-key': 'k-slow' })).status, 200);
    const [ra, rb] = await compareEdges({ 'x-api-key': 'k-slow' });
    assert.equal(ra.status, 429);
    assert.equal(ra.body, rb.body);
    assert.equal(JSON.parse(ra.body).error.message, 'rate limit of 0.01/s with burst 1 exceeded for plan slow');
    closeSeconds(ra.headers.ratelimit, rb.headers.ratelimit, 'RateLimit');
    closeSeconds(ra.headers['retry-after'], rb.headers['retry-after'], 'Retry-After');

    // In flight: hold three, then both edges refuse the fourth the same way.
    const held = [send('nginx', { 'x-api-key': 'k-inflight' }, '/hold/a'), send('sluice', { 'x-api-key': 'k-inflight' }, '/hold/b'), send('nginx', { 'x-api-key': 'k-inflight' }, '/hold/c')];
    await waitUntil(() => backend.held() === 3, 5000, 'three held');
    const [ia, ib] = await compareEdges({ 'x-api-key': 'k-inflight' }, '/hold/d');
    assert.equal(ia.status, 429);
    assert.equal(ia.body, ib.body);
    assert.equal(ia.headers['retry-after'], ib.headers['retry-after']);
    backend.releaseAll();
    await Promise.all(held);
    await assertBothHealthy();
  });

  it('admitted requests: same RateLimit fields to the client, same identity headers to the upstream', async () => {
    const { key } = await createKey(gw.adminUrl, 'c-headers', 'open');
    const a = await send('nginx', { 'x-api-key': key, 'x-request-id': 'ok-1', 'x-sluice-customer': 'forged', 'x-sluice-plan': 'forged' });
    const b = await send('sluice', { 'x-api-key': key, 'x-request-id': 'ok-1', 'x-sluice-customer': 'forged', 'x-sluice-plan': 'forged' });
    assert.equal(a.status, 200, a.body);
    assert.equal(b.status, 200, b.body);
    for (const o of [a, b]) {
      assert.equal(o.headers['x-request-id'], 'ok-1', `${o.edge} answers with the client's request id, not the backend's`);
      assert.equal(o.headers['ratelimit-policy'], '"open";q=1000;w=1');
      assert.match(o.headers.ratelimit!, /^"open";r=99\d;t=\d+$/);
      const up = (JSON.parse(o.body) as { headers: Record<string, string> }).headers;
      assert.equal(up['x-sluice-customer'], 'c-headers', o.edge);
      assert.equal(up['x-sluice-plan'], 'open', o.edge);
      assert.equal(up['x-request-id'], 'ok-1', o.edge);
      assert.equal(up['x-api-key'], undefined, `${o.edge} does not forward the key`);
    }

    // A Redis that lost its script cache (restart, failover): EVALSHA says NOSCRIPT, EVAL follows.
    await client.script('FLUSH');
    const c = await send('nginx', { 'x-api-key': key });
    assert.equal(c.status, 200, c.body);
    assert.match(c.headers.ratelimit!, /^"open";r=99\d;t=\d+$/, 'the same bucket, not a fresh one');
    await assertBothHealthy();
  });

  it('with a pepper: nginx accepts the HMAC-SHA256 digest Sluice stores, from pepper_env', async () => {
    const pepper = 'pepper with spaces and ünïcode';
    const { createHmac } = await import('node:crypto');
    const hmac = (key: string): string => createHmac('sha256', pepper).update(key).digest('hex');
    const peppered = testConfig({
      upstreams: [backend.url],
      store: { kind: 'redis', url: redis.url, timeout_ms: 2000, failure_policy: 'closed' },
      plans: { open: { rate: 1000, burst: 1000 } },
      keys: [{ digest: hmac('k-peppered'), customer: 'c-pepper', plan: 'open' }],
      auth: { pepper },
    });
    const moduleConfig = nginxModuleConfig(parseConfig(stringify(peppered)), { pepperEnv: 'SLUICE_PEPPER' });
    assert.equal(JSON.stringify(moduleConfig).includes('ünïcode'), false, 'the pepper stays out of the file');
    // A key stored in Redis (as the admin API would) under its peppered digest.
    await client.hset(`sluice:key:${hmac('k-stored')}`, { customer: 'c-pepper', plan: 'open', label: '', created: 1 });
    const n2 = await startNginx({
      template: TEMPLATE,
      files: { 'sluice-nginx.json': JSON.stringify(moduleConfig) },
      vars: { WORKERS: '1', LUA_DIR, CONFIG: '@@RUN_DIR@@/sluice-nginx.json', UPSTREAM_SERVERS: `server ${new URL(backend.url).host};` },
      env: { SLUICE_PEPPER: pepper },
    });
    const pool = new Pool(n2.url);
    try {
      const get = async (key: string): Promise<number> => { const r = await pool.request({ method: 'GET', path: '/', headers: { 'x-api-key': key } }); await r.body.text(); return r.statusCode; };
      assert.equal(await get('k-peppered'), 200, 'static key, peppered digest');
      assert.equal(await get('k-stored'), 200, 'stored key, peppered digest');
      // The plain SHA-256 of a key is not what a peppered edge looks for.
      await client.hset(`sluice:key:${sha256('k-plain')}`, { customer: 'c-pepper', plan: 'open', label: '', created: 1 });
      assert.equal(await get('k-plain'), 401);
    } finally {
      await pool.close();
      await n2.stop();
    }
  });
});
