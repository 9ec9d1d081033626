import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testConfig } from '../../test/harness/config.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { Holder, sendOwn, type Answer } from '../../test/harness/held-request.js';
import { nginxMain, startNginx, type NginxProcess } from '../../test/harness/nginx.js';
import { freePort } from '../../test/harness/ports.js';
import { startRedis, type RedisProcess } from '../../test/harness/redis.js';
import { startTestBackend, waitUntil, type TestBackend } from '../../test/harness/test-backend.js';
import { EVENT_TIMEOUT_MS } from '../../test/harness/wait.js';

// Issue 4: nginx `limit_conn`, enforced. One scenario run against a real nginx with
// limit_conn and against Sluice (memory store, then Redis store with limit_conn.lua),
// all in front of one backend that holds `/hold…` requests open until the test lets one
// go. Each server must give the same status to every step: N requests of a key held,
// the N+1th refused with limit_conn_status; a key's slots are its own; an empty key is
// not limited; a slot frees when a held request is answered, when its client leaves,
// and when its upstream fails.
//
// No timing tolerance: every step waits for an event (an arrival at the backend, an
// answer) or polls the backend's held count with a deadline, so the order is fixed.

const NGINX_CONF = nginxMain(`
  limit_conn_zone $http_x_api_key zone=perkey:1m;
  limit_conn_zone $binary_remote_addr zone=addr:1m;
  server {
    listen @@LISTEN@@;
    location /hold/ { limit_conn perkey 2; limit_conn_status 429; proxy_pass @@BACKEND@@; }
    location /hold-ip/ { limit_conn addr 1; proxy_pass @@BACKEND@@; }
    location /dead/ { limit_conn addr 1; proxy_pass @@DEAD@@; }
  }
`, 'info');

function sluiceConfig(backend: string, dead: string, store: object): Record<string, unknown> {
  return {
    ...testConfig({
      upstreams: [backend],
      store: store as never,
      log: { access: false },
      routes: [
        { name: 'hold', prefix: '/hold/', upstream: 'main', public: true, limit_conn: [{ zone: 'perkey', max: 2 }], limit_conn_status: 429 },
        { name: 'hold-ip', prefix: '/hold-ip/', upstream: 'main', public: true, limit_conn: [{ zone: 'addr', max: 1 }] },
        { name: 'dead', prefix: '/dead/', upstream: 'dead', public: true, limit_conn: [{ zone: 'addr', max: 1 }] },
      ],
    }),
    upstreams: { main: { targets: [backend] }, dead: { targets: [dead] } },
    limit_conn_zones: { perkey: { key: 'header:X-API-Key', size: '1m' }, addr: { key: 'client', size: '1m' } },
  };
}

const KEY_A = { 'x-api-key': 'key-a' };
const KEY_B = { 'x-api-key': 'key-b' };

/** The scenario; returns `step status` lines, and the refusals' answers for the caller to inspect. */
async function scenario(url: string, backend: TestBackend): Promise<{ steps: string[]; refusals: Answer[] }> {
  const holder = new Holder(url, backend);
  const { pending } = holder;
  const hold = holder.hold.bind(holder);
  const steps: string[] = [];
  const refusals: Answer[] = [];
  const answer = async (step: string, path: string, headers: Record<string, string>): Promise<void> => {
    const a = await sendOwn(url, path, headers).done;
    steps.push(`${step} ${a.status}`);
    if (a.status !== 200 && a.status !== 502) refusals.push(a);
  };
  try {
    const [a1, a2] = await hold('/hold/a', KEY_A, 2);
    await answer('key-a 3rd while 2 held', '/hold/a', KEY_A);
    await hold('/hold/b', KEY_B, 2);
    await hold('/hold/none', {}, 5);
    steps.push(`held ${backend.held()}`);
    await answer('key-b 3rd while 2 held', '/hold/b', KEY_B);

    assert.ok(backend.releaseOne(), 'the oldest held request (key-a 1st) is answered');
    steps.push(`key-a 1st answered ${(await a1!.done).status}`);
    await hold('/hold/a', KEY_A, 1);
    await answer('key-a after one released', '/hold/a', KEY_A);

    const heldBefore = backend.held();
    a2!.abort();
    // The server closes its upstream request once it sees the client leave; by then it has ended the request.
    await waitUntil(() => backend.held() === heldBefore - 1, EVENT_TIMEOUT_MS, 'the aborted request to leave the backend');
    await hold('/hold/a', KEY_A, 1);
    steps.push('key-a admitted after a client abort');
    await answer('key-a next', '/hold/a', KEY_A);

    await hold('/hold-ip/x', {}, 1);
    await answer('per-address 2nd (default status)', '/hold-ip/x', {});

    // Everything answered: every slot is free again, the per-address one included.
    backend.releaseAll();
    const answered = await Promise.allSettled(pending.map((p) => p.done));
    steps.push(`answered ${answered.filter((r) => r.status === 'fulfilled' && r.value.status === 200).length}`);
    await hold('/hold-ip/y', {}, 1);
    steps.push('per-address admitted after all answered');
    backend.releaseAll();
    await Promise.all(pending.slice(-1).map((p) => p.done));
    for (let i = 1; i <= 3; i++) await answer(`dead upstream #${i}`, '/dead/x', {});
  } finally {
    holder.close();
  }
  return { steps, refusals };
}

const EXPECTED = [
  'key-a 3rd while 2 held 429',
  'held 9',
  'key-b 3rd while 2 held 429',
  'key-a 1st answered 200',
  'key-a after one released 429',
  'key-a admitted after a client abort',
  'key-a next 429',
  'per-address 2nd (default status) 503',
  // key-a: 1st (answered earlier), after the release, after the abort (2nd was aborted); 2 key-b; 5 without a key; 1 per address
  'answered 11',
  'per-address admitted after all answered',
  // max 1 per address: each answers before the next is sent, so a failed upstream gave its slot back.
  'dead upstream #1 502', 'dead upstream #2 502', 'dead upstream #3 502',
];

describe('limit_conn: nginx and Sluice hold the same number of requests per key', () => {
  let backend: TestBackend;
  let redis: RedisProcess;
  let nginx: NginxProcess;
  let dead: string;

  before(async () => {
    backend = await startTestBackend('/hold');
    redis = await startRedis();
    // Nothing listens here: every request to it fails to connect.
    dead = `http://127.0.0.1:${await freePort()}`;
    nginx = await startNginx({ template: NGINX_CONF, vars: { BACKEND: backend.url, DEAD: dead } });
  });

  after(async () => {
    await nginx?.stop();
    await redis?.stop();
    await backend?.close();
  });

  it('real nginx limit_conn', async () => {
    const { steps } = await scenario(nginx.url, backend);
    assert.deepEqual(steps, EXPECTED);
    assert.match(nginx.errorLog(), /limiting connections by zone "perkey"/);
    assert.match(nginx.errorLog(), /limiting connections by zone "addr"/);
  });

  for (const kind of ['memory', 'redis'] as const) {
    it(`Sluice, ${kind} store`, async () => {
      const store = kind === 'memory' ? { kind } : { kind, url: redis.url, timeout_ms: 2000, failure_policy: 'closed' };
      const gw: GatewayProcess = await spawnGateway(sluiceConfig(backend.url, dead, store));
      try {
        assert.ok(!gw.lines.some((l) => /limit_conn/.test(String(l.msg))), 'no startup warning about limit_conn');
        const { steps, refusals } = await scenario(gw.url, backend);
        assert.deepEqual(steps, EXPECTED);
        for (const r of refusals) {
          assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, 'concurrency_limited');
          assert.equal(r.headers['retry-after'], '1');
        }
      } finally {
        await gw.stop();
      }
    });
  }
});
