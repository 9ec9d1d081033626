import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { request } from 'undici';
import { admin, createKey } from '../../test/harness/admin.js';
import { startBackend } from '../../test/harness/backend.js';
import { ADMIN_TOKEN, sha256, testConfig } from '../../test/harness/config.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { pollUntil } from '../../test/harness/poll.js';
import { freePort } from '../../test/harness/ports.js';
import { startRedis, type RedisProcess } from '../../test/harness/redis.js';

// Distinctive so a leak is unmistakable: no log line has any reason to contain them.
const tag = randomBytes(6).toString('hex');
const KEY_OK = `ak-observe-ok-${tag}`;
const KEY_TINY = `ak-observe-tiny-${tag}`;
const JWT_SECRET = `jwt-secret-observe-${tag}-0123456789abcdef`;

interface Sample { name: string; labels: Record<string, string>; value: number }

function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

function metric(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

describe('observe: metrics, health and access logs', () => {
  let backend: Awaited<ReturnType<typeof startBackend>>;
  let redis: RedisProcess;
  let gw: GatewayProcess;
  const secrets: string[] = [KEY_OK, KEY_TINY, JWT_SECRET, ADMIN_TOKEN];

  before(async () => {
    backend = await startBackend();
    redis = await startRedis();
    const cfg = testConfig({
      upstreams: [backend.url],
      store: { kind: 'redis', url: redis.url },
      // deny_cache_ms 0: the 429 below must be a Redis decision, which is what this test times.
      plans: { test: { rate: 1000, burst: 1000 }, tiny: { rate: 0.01, burst: 1, deny_cache_ms: 0 } },
      keys: [
        { digest: sha256(KEY_OK), customer: 'obs-co', plan: 'test' },
        { digest: sha256(KEY_TINY), customer: 'obs-tiny', plan: 'tiny' },
      ],
      auth: { jwt: { algorithms: ['HS256'], keys: [{ secret: JWT_SECRET }] } },
      // The most verbose level: whatever the gateway would ever log, this test sees.
      log: { level: 'trace' },
    }) as Record<string, any>;
    cfg.upstreams.dead = { targets: [`http://127.0.0.1:${await freePort()}`], connect_timeout_ms: 1000 };
    cfg.routes = [{ name: 'dead', prefix: '/dead', upstream: 'dead' }, ...cfg.routes];
    gw = await spawnGateway(cfg);
  });
  after(async () => {
    await gw?.stop();
    await redis?.stop();
    await backend?.close();
  });

  const get = async (path: string, headers: Record<string, string> = {}) => {
    const res = await request(`${gw.url}${path}`, { headers });
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, text };
  };
  const scrape = async (): Promise<Sample[]> => {
    const res = await request(`${gw.adminUrl}/metrics`);
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    return parseMetrics(await res.body.text());
  };
  const accessLines = (id: string) => gw.lines.filter((l) => l.msg === 'request' && l.request_id === id);
  /** Log writes are asynchronous: wait for the line of a later request, then all earlier lines are out. */
  const flushLogs = async (): Promise<void> => {
    const id = `flush-${randomBytes(4).toString('hex')}`;
    await get('/v1/echo', { 'x-request-id': id });
    await gw.waitForLine((l) => l.msg === 'request' && l.request_id === id);
  };

  it('/healthz and /readyz answer 200 while Redis is up', async () => {
    for (const path of ['/healthz', '/readyz']) {
      const res = await request(`${gw.adminUrl}${path}`);
      assert.equal(res.statusCode, 200, path);
      assert.match(String(res.headers['content-type']), /^application\/json/);
      await res.body.dump();
    }
  });

  it('/metrics counts requests, durations, limit decisions, store calls and upstream errors', async () => {
    const before = await scrape();
    const okBefore = metric(before, 'sluice_requests_total', { route: 'all', status: '200', plan: 'test' });
    for (let i = 0; i < 3; i++) assert.equal((await get('/v1/echo', { 'x-api-key': KEY_OK })).status, 200);
    assert.equal((await get('/v1/echo')).status, 401);
    assert.equal((await get('/v1/echo', { 'x-api-key': KEY_TINY })).status, 200);
    assert.equal((await get('/v1/echo', { 'x-api-key': KEY_TINY })).status, 429);
    const dead = await get('/dead/x', { 'x-api-key': KEY_OK });
    assert.equal(dead.status, 502, dead.text);

    const m = await scrape();
    assert.equal(metric(m, 'sluice_requests_total', { route: 'all', status: '200', plan: 'test' }) - okBefore, 3);
    assert.ok(metric(m, 'sluice_requests_total', { route: 'all', status: '401', plan: '(none)' }) >= 1);
    assert.equal(metric(m, 'sluice_requests_total', { route: 'all', status: '429', plan: 'tiny' }), 1);
    assert.equal(metric(m, 'sluice_requests_total', { route: 'dead', status: '502', plan: 'test' }), 1);
    assert.ok(metric(m, 'sluice_request_duration_seconds_count', { route: 'all' }) >= 5);
    assert.ok(metric(m, 'sluice_request_duration_seconds_bucket', { route: 'all', le: '+Inf' }) >= 5);
    assert.ok(metric(m, 'sluice_request_duration_seconds_sum', { route: 'all' }) > 0);
    assert.ok(metric(m, 'sluice_limit_decisions_total', { result: 'allowed' }) >= 5);
    assert.equal(metric(m, 'sluice_limit_decisions_total', { result: 'rate_limited' }), 1);
    assert.ok(metric(m, 'sluice_store_duration_seconds_count', { op: 'admit' }) >= 6, 'every Redis decision is timed');
    assert.equal(metric(m, 'sluice_upstream_errors_total', { upstream: 'dead', kind: 'connect' }), 1);
    assert.equal(metric(m, 'sluice_upstream_errors_total', { upstream: 'main' }), 0);
  });

  it('writes exactly one access-log line per request, with what happened to it', async () => {
    const cases: { id: string; path: string; headers: Record<string, string>; status: number; customer?: string; plan?: string; limit: string; upstream: boolean }[] = [
      { id: `ok-${tag}`, path: '/v1/echo?q=1', headers: { 'x-api-key': KEY_OK }, status: 200, customer: 'obs-co', plan: 'test', limit: 'allowed', upstream: true },
      { id: `anon-${tag}`, path: '/v1/echo', headers: {}, status: 401, limit: 'skipped', upstream: false },
      { id: `bad-key-${tag}`, path: '/v1/echo', headers: { 'x-api-key': `ak-wrong-${tag}` }, status: 401, limit: 'skipped', upstream: false },
      { id: `tiny-${tag}`, path: '/v1/echo', headers: { 'x-api-key': KEY_TINY }, status: 429, customer: 'obs-tiny', plan: 'tiny', limit: 'rate_limited', upstream: false },
      { id: `dead-${tag}`, path: '/dead/y', headers: { 'x-api-key': KEY_OK }, status: 502, customer: 'obs-co', plan: 'test', limit: 'allowed', upstream: true },
    ];
    const bodies = new Map<string, number>();
    for (const c of cases) {
      const r = await get(c.path, { ...c.headers, 'x-request-id': c.id });
      assert.equal(r.status, c.status, `${c.id}: ${r.text}`);
      bodies.set(c.id, Buffer.byteLength(r.text));
    }
    await flushLogs();
    for (const c of cases) {
      const lines = accessLines(c.id);
      assert.equal(lines.length, 1, `${c.id}: ${lines.length} access-log lines`);
      const l = lines[0]!;
      assert.equal(l.status, c.status, c.id);
      assert.equal(l.customer, c.customer, c.id);
      assert.equal(l.plan, c.plan, c.id);
      assert.equal(l.limit, c.limit, c.id);
      assert.equal(l.bytes_out, bodies.get(c.id), `${c.id}: bytes_out is the body size`);
      assert.equal(typeof l.bytes_in, 'number', c.id);
      assert.equal(typeof l.duration_ms, 'number', c.id);
      assert.ok((l.duration_ms as number) >= 0 && (l.duration_ms as number) < 10_000, c.id);
      if (c.upstream) assert.match(String(l.upstream), /^http:\/\/127\.0\.0\.1:\d+$/, c.id);
      else assert.equal(l.upstream, undefined, c.id);
      assert.equal(l.path, c.path.split('?')[0], `${c.id}: the query string is not logged`);
    }
    const dead = accessLines(`dead-${tag}`)[0]!;
    assert.equal(dead.error, 'bad_gateway');
  });

  it('/readyz answers 503 once the configured Redis is gone', async (t) => {
    await redis.stop();
    const r = await pollUntil(async () => {
      const res = await request(`${gw.adminUrl}/readyz`);
      const body = await res.body.json() as { status: string };
      return res.statusCode === 503 ? body : undefined;
    }, 5000, 25);
    t.diagnostic(`/readyz turned 503 ${r.elapsedMs.toFixed(0)} ms after Redis was killed`);
    assert.deepEqual(r.value && { status: r.value.status }, { status: 'not_ready' });
    const health = await request(`${gw.adminUrl}/healthz`);
    assert.equal(health.statusCode, 200, 'liveness does not depend on Redis');
    await health.body.dump();
  });

  it('never writes a credential to a log line or stderr, valid or not', async () => {
    const jwtOk = await new SignJWT({ sub: 'obs-co', plan: 'test' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m')
      .sign(new TextEncoder().encode(JWT_SECRET));
    const jwtBad = await new SignJWT({ sub: 'obs-co', plan: 'test' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m')
      .sign(new TextEncoder().encode(`not-the-secret-${tag}-0123456789abcdef`));
    const badKey = `ak-invalid-${tag}`;
    const badAdmin = `admin-wrong-${tag}`;
    secrets.push(jwtOk, jwtBad, badKey, badAdmin, jwtOk.split('.')[2]!, jwtBad.split('.')[2]!);

    // Redis is down by now (previous test): lookups of unknown keys fail and get logged,
    // which is where a careless error message would carry the key along.
    const creds: Record<string, string>[] = [
      { 'x-api-key': KEY_OK }, { authorization: `Bearer ${KEY_OK}` }, { 'x-api-key': badKey }, { authorization: `Bearer ${badKey}` },
      { authorization: `Bearer ${jwtOk}` }, { authorization: `Bearer ${jwtBad}` }, { authorization: `bearer ${jwtBad}x` },
      { 'x-api-key': `${KEY_OK}-suffix` }, { authorization: `Basic ${Buffer.from(`u:${KEY_OK}`).toString('base64')}` },
    ];
    for (const h of creds) await get('/v1/echo', h);
    for (const h of creds) await get('/dead/z', h);
    for (const token of [ADMIN_TOKEN, badAdmin]) {
      await admin(gw.adminUrl, 'GET', '/admin/keys', undefined, token);
      await admin(gw.adminUrl, 'POST', '/admin/keys', { customer: 'leak-check', plan: 'test' }, token);
    }
    await flushLogs();

    const leaks: string[] = [];
    const corpus = [...gw.lines.map((l) => JSON.stringify(l)), ...gw.stderr];
    for (const line of corpus) {
      for (const s of secrets) if (line.includes(s)) leaks.push(`${s.slice(0, 12)}... in ${line.slice(0, 200)}`);
    }
    assert.deepEqual(leaks, []);
    assert.ok(gw.lines.some((l) => l.msg === 'credential lookup failed'), 'the store-failure path was exercised');
    assert.ok(corpus.length > 20, 'there were log lines to scan');
  });

  it('with Redis up, keys created through the admin API stay out of the logs too', async () => {
    const r2 = await startRedis();
    const g2 = await spawnGateway(testConfig({ upstreams: [backend.url], store: { kind: 'redis', url: r2.url }, log: { level: 'trace' } }));
    try {
      const { key } = await createKey(g2.adminUrl, 'leak-co', 'test');
      assert.equal((await request(`${g2.url}/v1/echo`, { headers: { 'x-api-key': key } })).statusCode, 200);
      await g2.waitForLine((l) => l.msg === 'request' && l.customer === 'leak-co');
      const corpus = [...g2.lines.map((l) => JSON.stringify(l)), ...g2.stderr];
      assert.ok(corpus.some((l) => l.includes('api key created')), 'the creation is logged');
      assert.deepEqual(corpus.filter((l) => l.includes(key) || l.includes(ADMIN_TOKEN)), []);
    } finally {
      await g2.stop();
      await r2.stop();
    }
  });
});
