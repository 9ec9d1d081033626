import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { sha256, testConfig } from '../../test/harness/config.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { metricValue, scrapeMetrics } from '../../test/harness/metrics.js';
import { freePort } from '../../test/harness/ports.js';
import { startTestBackend, type TestBackend } from '../../test/harness/test-backend.js';

const KEY = 'k-retries';
const HEADERS = { 'x-api-key': KEY };

/** An upstream in the test process that records every request body it received whole. */
interface Recording {
  readonly url: string;
  readonly bodies: string[];
  close(): Promise<void>;
}

// ok: 200 echoing the body; reset: read the whole request, then cut the connection
// (it may have acted on it); refuse: 503 at once.
async function recording(behaviour: 'ok' | 'reset' | 'refuse'): Promise<Recording> {
  const bodies: string[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.once('end', () => {
      const body = Buffer.concat(chunks).toString();
      bodies.push(body);
      if (behaviour === 'reset') { req.socket.destroy(); return; }
      const status = behaviour === 'ok' ? 200 : 503;
      res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    bodies,
    close: () => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  };
}

function gatewayOver(targets: string[], upstream: object = {}): Promise<GatewayProcess> {
  return spawnGateway(testConfig({
    upstreams: targets,
    // Round-robin and no ejection: every request's first pick is predictable and a
    // failing target keeps failing.
    upstream: { balancer: 'round_robin', outlier: { consecutive_failures: 0 }, ...upstream },
    keys: [{ digest: sha256(KEY), customer: 'acme', plan: 'test' }],
    plans: { test: { rate: 100000, burst: 100000, max_body_bytes: 4 * 1024 * 1024 } },
    log: { access: false },
  }));
}

async function send(gw: GatewayProcess, method: 'GET' | 'POST' | 'PUT', body?: string | Buffer): Promise<{ status: number; text: string }> {
  const res = await request(`${gw.url}/v1/work`, { method, headers: HEADERS, body });
  return { status: res.statusCode, text: await res.body.text() };
}

describe('retries: a body is replayed only when that cannot duplicate work', { timeout: 180_000 }, () => {
  let live: Recording;
  let resetA: Recording;
  let resetB: Recording;
  let toLive: GatewayProcess;
  let toResets: GatewayProcess;

  before(async () => {
    [live, resetA, resetB] = await Promise.all([recording('ok'), recording('reset'), recording('reset')]);
    // Nothing listens on `dead`: every connection to it is refused.
    const dead = `http://127.0.0.1:${await freePort()}`;
    // The budget has a test of its own; here it must not be what stops a retry.
    const generous = { retry: { min_per_second: 1000 } };
    [toLive, toResets] = await Promise.all([gatewayOver([dead, live.url], generous), gatewayOver([resetA.url, resetB.url], generous)]);
  });
  after(async () => {
    await Promise.all([toLive?.stop(), toResets?.stop()]);
    await Promise.all([live, resetA, resetB].map((r) => r?.close()));
  });

  it('a small POST whose connection was refused goes to another target and arrives exactly once', async () => {
    const sent = Array.from({ length: 6 }, (_, i) => `order-${i}`);
    for (const body of sent) {
      const r = await send(toLive, 'POST', body);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.text, body);
    }
    assert.deepEqual(live.bodies, sent);
    const m = await scrapeMetrics(toLive.adminUrl);
    assert.ok(metricValue(m, 'sluice_upstream_retries_total', { reason: 'connect' }) >= 3, 'half the first picks were the dead target');
  });

  it('a POST the upstream received and then reset on is not retried: one delivery, 502', async () => {
    const r = await send(toResets, 'POST', 'charge-once');
    assert.equal(r.status, 502);
    assert.equal(resetA.bodies.length + resetB.bodies.length, 1);
  });

  it('a large streamed POST is not retried once its bytes went out: one delivery, 502', async () => {
    const before = resetA.bodies.length + resetB.bodies.length;
    const r = await send(toResets, 'POST', Buffer.alloc(512 * 1024, 'x'));
    assert.equal(r.status, 502);
    assert.equal(resetA.bodies.length + resetB.bodies.length - before, 1);
  });

  it('control: an idempotent PUT with a small body is retried on the other target after the same reset', async () => {
    const before = resetA.bodies.length + resetB.bodies.length;
    const r = await send(toResets, 'PUT', 'put-twice-is-fine');
    assert.equal(r.status, 502);
    assert.equal(resetA.bodies.length + resetB.bodies.length - before, 2);
    assert.deepEqual([resetA.bodies.at(-1), resetB.bodies.at(-1)], ['put-twice-is-fine', 'put-twice-is-fine'], 'once on each target');
    const m = await scrapeMetrics(toResets.adminUrl);
    assert.equal(metricValue(m, 'sluice_upstream_retries_total', { reason: 'reset' }), 1);
  });
});

describe('retries: the budget stops a retry storm when every target fails', { timeout: 180_000 }, () => {
  let refusing: Recording[] = [];
  let gw: GatewayProcess;

  before(async () => {
    refusing = await Promise.all([recording('refuse'), recording('refuse'), recording('refuse')]);
    gw = await gatewayOver(refusing.map((r) => r.url), { retry: { attempts: 2, budget_percent: 20, min_per_second: 3 } });
  });
  after(async () => {
    await gw?.stop();
    await Promise.all(refusing.map((r) => r.close()));
  });

  it('retries stay within max(min_per_second, 20% of requests) per second', async () => {
    const N = 60;
    const t0 = performance.now();
    for (let i = 0; i < N; i++) assert.equal((await send(gw, 'GET')).status, 503);
    const seconds = (performance.now() - t0) / 1000;
    const attempts = refusing.reduce((n, r) => n + r.bodies.length, 0);
    const retries = attempts - N;
    const m = await scrapeMetrics(gw.adminUrl);
    const refused = metricValue(m, 'sluice_upstream_retries_refused_total');
    // Each sliding second allows max(3, 0.2 × its requests); the run spans ⌈seconds⌉ + 1 of them at most.
    const bound = Math.max(3 * (Math.ceil(seconds) + 1), 0.2 * N + 3);
    console.log(`budget: ${N} requests in ${seconds.toFixed(2)} s → ${attempts} attempts at the backends (${retries} retries, bound ${bound}, ${refused} refused; unbudgeted: ${3 * N})`);
    assert.ok(retries >= 3, `only ${retries} retries: the budget's minimum was not used`);
    assert.ok(retries <= bound, `${retries} retries, more than ${bound}`);
    assert.equal(metricValue(m, 'sluice_upstream_retries_total'), retries);
    assert.ok(refused >= N - retries, `${refused} refused`);
  });
});

describe('circuit breaking: max_inflight per target', { timeout: 180_000 }, () => {
  let slow: TestBackend[] = [];
  let gw: GatewayProcess;

  before(async () => {
    slow = await Promise.all([startTestBackend(), startTestBackend()]);
    gw = await gatewayOver(slow.map((b) => b.url), { balancer: 'least_outstanding', circuit: { max_inflight: 1 } });
  });
  after(async () => {
    await gw?.stop();
    await Promise.all(slow.map((b) => b.close()));
  });

  it('a busy target is skipped; with every target busy the next request gets 503 overloaded at once', async (t) => {
    const held = (): number => slow.reduce((n, b) => n + b.held(), 0);
    const arrived = (): Promise<unknown> => Promise.race(slow.map((b) => once(b.events, 'arrive')));
    let a = arrived();
    const first = request(`${gw.url}/hold/1`, { headers: HEADERS });
    await a;
    a = arrived();
    const second = request(`${gw.url}/hold/2`, { headers: HEADERS });
    await a;
    assert.deepEqual(slow.map((b) => b.held()), [1, 1], 'the second request went to the idle target');
    const t0 = performance.now();
    const third = await request(`${gw.url}/hold/3`, { headers: HEADERS });
    const ms = performance.now() - t0;
    assert.equal(third.statusCode, 503);
    assert.equal((await third.body.json() as { error: { code: string } }).error.code, 'overloaded');
    // "At once" is causal, not a client-clock bound (a full suite run took 476 ms on a busy
    // host): the 503 came while both targets still held their requests, which are released
    // only below, so it did not wait for a target to free up.
    t.diagnostic(`the 503 took ${ms.toFixed(0)} ms`);
    assert.equal(held(), 2, 'the refused request never reached a backend');
    for (const b of slow) b.releaseAll();
    assert.deepEqual(await Promise.all([first, second].map(async (p) => (await p).statusCode)), [200, 200]);
    assert.equal(metricValue(await scrapeMetrics(gw.adminUrl), 'sluice_upstream_breaker_rejections_total'), 1);
  });
});
