import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { after, before, describe, it } from 'node:test';
import { startBackend } from '../../test/harness/backend.js';
import { sha256, testConfig } from '../../test/harness/config.js';
import { sendExact } from '../../test/harness/exact-path.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { startRedis, type RedisProcess } from '../../test/harness/redis.js';

// allow/deny and real client addresses end to end, on a real Redis store: a refused
// probe is answered 403 before auth and before any limit, so it costs no store call; the
// client address behind a trusted proxy is the one per-IP limits, allow/deny and the
// access log use; an untrusted peer cannot choose its own. The gateway listens on
// 127.0.0.1; requests come from 127.0.0.1 (not trusted) or 127.0.0.2 (the trusted proxy).

const UNTRUSTED = '127.0.0.1';
const PROXY = '127.0.0.2';

describe('routes: allow/deny and client addresses', () => {
  let redis: RedisProcess;
  let client: Redis;
  let backend: Awaited<ReturnType<typeof startBackend>>;
  let gw: GatewayProcess;

  before(async () => {
    redis = await startRedis();
    client = new Redis(redis.url);
    backend = await startBackend();
    const cfg = testConfig({
      upstreams: [backend.url],
      store: { kind: 'redis', url: redis.url },
      keys: [{ digest: sha256('k-access'), customer: 'acme', plan: 'test' }],
      server: { real_ip: { trusted: [`${PROXY}/32`, '2001:db8::/32'], header: 'x-forwarded-for', recursive: true } },
    });
    cfg.limit_req_zones = { perip: { key: 'client', rate: '1r/m' } };
    cfg.routes = [
      // Not public: a request that passed allow/deny would need a key (401) and pay limit_req.
      { name: 'admin', prefix: '/admin/', upstream: 'main', limit_req: [{ zone: 'perip' }], access: [{ allow: '198.51.100.0/24' }, { allow: '2001:db8:1::/48' }, { deny: 'all' }] },
      { name: 'per-ip', prefix: '/per-ip/', upstream: 'main', public: true, limit_req: [{ zone: 'perip' }], limit_req_status: 429 },
      { name: 'all', prefix: '/', upstream: 'main' },
    ];
    gw = await spawnGateway(cfg);
  });
  after(async () => {
    await gw.stop();
    client.disconnect();
    await redis.stop();
    await backend.close();
  });

  /** Calls of every script the limiters run (EVALSHA, or EVAL on a script cache miss). */
  const scriptCalls = async (): Promise<number> => {
    const stats = await client.info('commandstats');
    let n = 0;
    for (const m of stats.matchAll(/cmdstat_(evalsha|eval|evalsha_ro|fcall):calls=(\d+)/g)) n += Number(m[2]);
    return n;
  };

  it('refuses a probe with 403 before auth and before limits: no store call', async () => {
    const before = await scriptCalls();
    for (let i = 0; i < 20; i++) {
      const r = await sendExact(gw.port, `/admin/.env?i=${i}`, { localAddress: UNTRUSTED });
      assert.equal(r.status, 403, r.body);
      assert.equal((r.json as { error: { code: string } }).error.code, 'forbidden', 'not 401: allow/deny comes before auth');
    }
    assert.equal(await scriptCalls(), before, '20 refused probes, no limiter script run');
    // The control: an allowed client does reach the limiter (and then auth).
    const allowed = await sendExact(gw.port, '/admin/x', { localAddress: PROXY, headers: { 'x-forwarded-for': '198.51.100.7' } });
    assert.equal(allowed.status, 401, allowed.body);
    assert.ok(await scriptCalls() > before, 'an allowed request pays its limit_req call');
  });

  it('believes the trusted proxy\'s X-Forwarded-For, v4 and v6, recursively', async () => {
    const via = (xff: string) => sendExact(gw.port, '/admin/x', { localAddress: PROXY, headers: { 'x-forwarded-for': xff, 'x-api-key': 'k-access' } });
    assert.equal((await via('198.51.100.8')).status, 200);
    assert.equal((await via('203.0.113.1, 198.51.100.9, 2001:db8::99')).status, 200, 'the trusted v6 hop is skipped: the client is 198.51.100.9');
    assert.equal((await via('2001:db8:1::5')).status, 200);
    assert.equal((await via('203.0.113.1')).status, 403);
  });

  it('does not let an untrusted peer choose its address', async () => {
    const r = await sendExact(gw.port, '/admin/x', { localAddress: UNTRUSTED, headers: { 'x-forwarded-for': '198.51.100.7', 'x-real-ip': '198.51.100.7', 'x-api-key': 'k-access' } });
    assert.equal(r.status, 403);
  });

  it('keys per-IP limits by the real client: each client its own bucket, a forged header buys nothing', async () => {
    const viaProxy = (ip: string) => sendExact(gw.port, '/per-ip/x', { localAddress: PROXY, headers: { 'x-forwarded-for': ip } });
    assert.equal((await viaProxy('192.0.2.1')).status, 200);
    assert.equal((await viaProxy('192.0.2.1')).status, 429, 'same client, second request in the minute');
    assert.equal((await viaProxy('192.0.2.2')).status, 200, 'another client behind the same proxy');
    const direct = (xff: string) => sendExact(gw.port, '/per-ip/x', { localAddress: UNTRUSTED, headers: { 'x-forwarded-for': xff } });
    assert.equal((await direct('192.0.2.50')).status, 200);
    assert.equal((await direct('192.0.2.51')).status, 429, 'the untrusted peer is one client, whatever it writes');
  });

  it('logs the real client address', async () => {
    await sendExact(gw.port, '/admin/logged', { localAddress: PROXY, headers: { 'x-forwarded-for': '198.51.100.77' } });
    const line = await gw.waitForLine((l) => l.msg === 'request' && l.path === '/admin/logged');
    assert.equal(line.client, '198.51.100.77');
  });

  it('sends the upstream X-Real-IP and the proxy\'s X-Forwarded-For with the proxy appended', async () => {
    const r = await sendExact(gw.port, '/per-ip/headers', { localAddress: PROXY, headers: { 'x-forwarded-for': '192.0.2.99, 203.0.113.5' } });
    assert.equal(r.status, 200, r.body);
    const h = (r.json as { headers: Record<string, string> }).headers;
    assert.equal(h['x-real-ip'], '203.0.113.5');
    assert.equal(h['x-forwarded-for'], `192.0.2.99, 203.0.113.5, ${PROXY}`);
  });
});
