import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { WebSocket, WebSocketServer } from 'ws';
import { sha256, testConfig } from '../../test/harness/config.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { metricValue, scrapeMetrics } from '../../test/harness/metrics.js';
import { pollUntil } from '../../test/harness/poll.js';
import { rawRequest } from '../../test/harness/raw-http.js';
import { assertGatewayHealthy } from '../../test/harness/proc.js';
import { makeTestPki, type TestPki } from '../../test/harness/tls-pki.js';

// WebSocket pass-through with real peers (the ws package on both ends): the Upgrade
// request runs the default stack (route, auth, limits, balance) as one request, the
// tunnel carries frames both ways, holds the plan's in-flight slot while open, is cut by
// drain on shutdown, and its bytes reach the access log and the metrics.

const KEYS = { ws: 'ak-ws-tunnel', one: 'ak-ws-one', plain: 'ak-ws-plain' };

/** An upstream that echoes WebSocket messages (after a greeting) and answers plain requests with the headers it saw. */
async function startWsUpstream(): Promise<{ server: Server; port: number; upgrades: IncomingHttpHeaders[]; closed: () => number }> {
  const upgrades: IncomingHttpHeaders[] = [];
  let closed = 0;
  const server = createServer((req, res) => {
    const body = JSON.stringify({ url: req.url, headers: req.headers });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req: IncomingMessage) => {
    upgrades.push(req.headers);
    ws.send('welcome');
    ws.on('message', (data, binary) => ws.send(binary ? data : `echo:${String(data)}`, { binary }));
    ws.on('close', () => { closed++; });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, upgrades, closed: () => closed };
}

/** A connected client with the greeting already read, or how the gateway refused it. */
async function openWs(url: string, key?: string, id?: string, tls: { ca?: Buffer } = {}, extra: Record<string, string> = {}): Promise<{ ws: WebSocket; next: () => Promise<string> } | { status: number; body: string; headers: IncomingHttpHeaders }> {
  const headers: Record<string, string> = { ...extra };
  if (key !== undefined) headers['x-api-key'] = key;
  if (id !== undefined) headers['x-request-id'] = id;
  const ws = new WebSocket(url, { headers, ...tls });
  const queue: string[] = [];
  const waiting: ((s: string) => void)[] = [];
  ws.on('message', (d) => { const s = String(d); const w = waiting.shift(); if (w !== undefined) w(s); else queue.push(s); });
  const next = (): Promise<string> => {
    const s = queue.shift();
    return s !== undefined ? Promise.resolve(s) : new Promise((resolve) => waiting.push(resolve));
  };
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, next }));
    ws.once('unexpected-response', (_req, res: IncomingMessage) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += String(c); });
      res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers }));
    });
    ws.once('error', reject);
  });
}

function connected(r: Awaited<ReturnType<typeof openWs>>): { ws: WebSocket; next: () => Promise<string> } {
  assert.ok('ws' in r, `expected a tunnel, got ${JSON.stringify(r)}`);
  return r;
}

async function closeWs(ws: WebSocket): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return;
  const closed = once(ws, 'close');
  ws.close();
  await closed;
}

describe('proxy: WebSocket upgrade pass-through', () => {
  let up: Awaited<ReturnType<typeof startWsUpstream>>;
  let gw: GatewayProcess;
  let ws: string;
  let wss: string;
  let pki: TestPki;

  before(async () => {
    [up, pki] = await Promise.all([startWsUpstream(), makeTestPki()]);
    gw = await spawnGateway({
      ...testConfig({
        upstreams: [`http://127.0.0.1:${up.port}`],
        plans: {
          test: { rate: 1000, burst: 1000 },
          // Two requests' worth of tokens, refilled too slowly to matter during the test.
          two: { rate: 0.001, burst: 2 },
          one: { rate: 1000, burst: 1000, max_inflight: 1 },
        },
        keys: [
          { digest: sha256(KEYS.ws), customer: 'c-two', plan: 'two' },
          { digest: sha256(KEYS.one), customer: 'c-one', plan: 'one' },
          { digest: sha256(KEYS.plain), customer: 'c-plain', plan: 'test' },
        ],
        routes: [
          { name: 'ws', prefix: '/ws', upstream: 'main', upgrade: ['websocket'] },
          { name: 'plain', prefix: '/plain', upstream: 'main' },
          // A nested route inherits upgrade like any field it does not set.
          { name: 'nest', prefix: '/nest/', upstream: 'main', public: true, upgrade: ['websocket'], routes: [{ name: 'inner', prefix: '/nest/inner/' }] },
          { name: 'denied', prefix: '/denied', upstream: 'main', upgrade: ['websocket'], access: [{ deny: 'all' }] },
          { name: 'conn', prefix: '/conn', upstream: 'main', public: true, upgrade: ['websocket'], limit_conn: [{ zone: 'perkey', max: 1 }], limit_conn_status: 429 },
        ],
      }),
      limit_conn_zones: { perkey: { key: 'header:X-Conn-Key' } },
      listeners: [
        { name: 'http', host: '127.0.0.1', port: 0 },
        { name: 'https', host: '127.0.0.1', port: 0, tls: { certificates: [{ cert: pki.serverCert, key: pki.serverKey }] } },
      ],
    });
    const listening = await gw.waitForLine((l) => l.msg === 'sluice listening');
    const [plain, tls] = listening.listeners as { port: number }[];
    ws = `ws://127.0.0.1:${plain!.port}`;
    wss = `wss://127.0.0.1:${tls!.port}`;
  });

  after(async () => {
    await gw?.stop();
    up?.server.closeAllConnections();
    up?.server.close();
    await pki?.remove();
  });

  it('carries messages both ways; the upstream sees the forwarded headers and the identity, not the key', async () => {
    const c = connected(await openWs(`${ws}/ws/echo?room=1`, KEYS.plain, 'ws-echo-1'));
    try {
      assert.equal(await c.next(), 'welcome');
      c.ws.send('hello');
      assert.equal(await c.next(), 'echo:hello');
      const big = Buffer.alloc(256 * 1024, 7);
      c.ws.send(big);
      const back = await new Promise<Buffer>((resolve) => c.ws.once('message', (d: Buffer) => resolve(d)));
      assert.ok(back.equals(big));
    } finally {
      await closeWs(c.ws);
    }
    const h = up.upgrades.at(-1)!;
    assert.equal(h['x-request-id'], 'ws-echo-1');
    assert.equal(h['x-forwarded-for'], '127.0.0.1');
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.equal(h['x-sluice-customer'], 'c-plain');
    assert.equal(h['x-api-key'], undefined);
    assert.equal(h.upgrade, 'websocket');
    // The access log line is written when the tunnel closes: status 101, its bytes, its listener.
    const line = await gw.waitForLine((l) => l.msg === 'request' && l.request_id === 'ws-echo-1');
    assert.equal(line.status, 101);
    assert.equal(line.route, 'ws');
    assert.equal(line.listener, 'http');
    assert.ok((line.bytes_in as number) > 256 * 1024 && (line.bytes_out as number) > 256 * 1024, JSON.stringify(line));
    const m = await scrapeMetrics(gw.adminUrl);
    assert.ok(metricValue(m, 'sluice_upgrade_bytes_total', { route: 'ws', direction: 'in' }) >= (line.bytes_in as number));
    assert.ok(metricValue(m, 'sluice_upgrade_bytes_total', { route: 'ws', direction: 'out' }) >= (line.bytes_out as number));
    assert.ok(metricValue(m, 'sluice_upgrade_tunnels_total', { route: 'ws' }) >= 1);
    assert.ok(metricValue(m, 'sluice_requests_total', { route: 'ws', status: '101' }) >= 1);
  });

  it('works over a TLS listener too (wss), and the upstream hears X-Forwarded-Proto: https', async () => {
    const c = connected(await openWs(`${wss}/ws/secure`, KEYS.plain, 'wss-1', { ca: readFileSync(pki.ca) }));
    try {
      assert.equal(await c.next(), 'welcome');
      c.ws.send('over tls');
      assert.equal(await c.next(), 'echo:over tls');
    } finally {
      await closeWs(c.ws);
    }
    assert.equal(up.upgrades.at(-1)!['x-forwarded-proto'], 'https');
    assert.equal((await gw.waitForLine((l) => l.msg === 'request' && l.request_id === 'wss-1')).listener, 'https');
  });

  it('a nested route inherits upgrade from its parent', async () => {
    const c = connected(await openWs(`${ws}/nest/inner/x`, undefined, 'ws-nested'));
    assert.equal(await c.next(), 'welcome');
    await closeWs(c.ws);
    assert.equal((await gw.waitForLine((l) => l.msg === 'request' && l.request_id === 'ws-nested')).route, 'inner');
  });

  it('an upgrade without a credential gets the normal JSON 401, and no tunnel', async () => {
    const before = up.upgrades.length;
    const r = await openWs(`${ws}/ws/echo`);
    assert.ok('status' in r);
    assert.equal(r.status, 401);
    assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, 'unauthorized');
    assert.match(String(r.headers['content-type']), /application\/json/);
    assert.equal(up.upgrades.length, before);
  });

  it("a route's access rules refuse an upgrade with the JSON 403 before auth, and no tunnel", async () => {
    const before = up.upgrades.length;
    const r = await openWs(`${ws}/denied/x`);
    assert.ok('status' in r);
    assert.equal(r.status, 403);
    assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, 'forbidden');
    assert.equal(up.upgrades.length, before);
  });

  it('counts the upgrade as one request against the limits, and the messages in the tunnel as none', async () => {
    const first = connected(await openWs(`${ws}/ws/a`, KEYS.ws));
    assert.equal(await first.next(), 'welcome');
    for (let i = 0; i < 20; i++) first.ws.send(`m${i}`);
    for (let i = 0; i < 20; i++) assert.equal(await first.next(), `echo:m${i}`);
    const second = connected(await openWs(`${ws}/ws/b`, KEYS.ws));
    const third = await openWs(`${ws}/ws/c`, KEYS.ws);
    assert.ok('status' in third, 'the third upgrade is over the burst of 2');
    assert.equal(third.status, 429);
    assert.equal((JSON.parse(third.body) as { error: { code: string } }).error.code, 'rate_limited');
    assert.ok(third.headers['retry-after'] !== undefined);
    await Promise.all([closeWs(first.ws), closeWs(second.ws)]);
  });

  it("holds the plan's max_inflight while the tunnel is open and frees it when it closes", async () => {
    const open = connected(await openWs(`${ws}/ws/held`, KEYS.one));
    assert.equal(await open.next(), 'welcome');
    // Earlier tests' tunnels close on the gateway's side a moment after their clients saw them close.
    const one = await pollUntil(async () => (metricValue(await scrapeMetrics(gw.adminUrl), 'sluice_upgrade_tunnels_open') === 1 ? true : undefined), 5000);
    assert.equal(one.value, true, 'exactly this tunnel is open');
    const during = await request(`${gw.url}/plain/x`, { headers: { 'x-api-key': KEYS.one } });
    const body = await during.body.json() as { error?: { code: string } };
    assert.equal(during.statusCode, 429);
    assert.equal(body.error?.code, 'concurrency_limited');
    await closeWs(open.ws);
    // The slot is given back when the gateway sees the tunnel close, a moment after the client does.
    const freed = await pollUntil(async () => {
      const r = await request(`${gw.url}/plain/x`, { headers: { 'x-api-key': KEYS.one } });
      await r.body.dump();
      return r.statusCode === 200 ? true : undefined;
    }, 5000);
    assert.equal(freed.value, true);
    assert.equal(metricValue(await scrapeMetrics(gw.adminUrl), 'sluice_upgrade_tunnels_open'), 0);
  });

  it('an open tunnel holds its limit_conn slot: a second upgrade with the same key is refused until it closes', async () => {
    const first = connected(await openWs(`${ws}/conn/a`, undefined, undefined, {}, { 'x-conn-key': 'k1' }));
    assert.equal(await first.next(), 'welcome');
    const second = await openWs(`${ws}/conn/b`, undefined, undefined, {}, { 'x-conn-key': 'k1' });
    assert.ok('status' in second);
    assert.equal(second.status, 429);
    assert.equal((JSON.parse(second.body) as { error: { code: string } }).error.code, 'concurrency_limited');
    const other = connected(await openWs(`${ws}/conn/c`, undefined, undefined, {}, { 'x-conn-key': 'k2' }));
    await closeWs(other.ws);
    await closeWs(first.ws);
    const again = await pollUntil(async () => {
      const r = await openWs(`${ws}/conn/d`, undefined, undefined, {}, { 'x-conn-key': 'k1' });
      if ('status' in r) return undefined;
      await closeWs(r.ws);
      return true;
    }, 5000);
    assert.equal(again.value, true, 'the slot came back when the tunnel closed');
  });

  it('a route without upgrade proxies the request plainly, as nginx does: the upstream sees no Upgrade', async () => {
    const before = up.upgrades.length;
    const r = await openWs(`${ws}/plain/socket`, KEYS.plain);
    assert.ok('status' in r);
    assert.equal(r.status, 200);
    const echo = JSON.parse(r.body) as { url: string; headers: IncomingHttpHeaders };
    assert.equal(echo.url, '/plain/socket');
    assert.equal(echo.headers.upgrade, undefined);
    assert.equal(echo.headers['sec-websocket-key'] !== undefined, true, 'other headers still go');
    assert.equal(up.upgrades.length, before);
    assert.equal(r.headers.connection, 'close');
  });

  it('an upstream that declines the upgrade: its answer reaches the client, and the connection closes', async () => {
    // The ws server refuses a handshake with an unknown Sec-WebSocket-Version with 400.
    const r = await rawRequest(gw.port, `GET /ws/declined HTTP/1.1\r\nHost: x\r\nX-Api-Key: ${KEYS.plain}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n`
      + 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 99\r\nX-Request-Id: ws-declined\r\n\r\n');
    assert.equal(r.status, 400, r.raw);
    assert.equal(r.headers['x-request-id'], 'ws-declined');
    assert.equal(r.headers.connection, 'close');
    assert.ok(r.elapsedMs < 4000, 'closed by the gateway, not by the read deadline');
  });

  it('drain on shutdown closes an open tunnel at server.drain_timeout_ms, and the process exits', async () => {
    const d = await spawnGateway({
      ...testConfig({
        upstreams: [`http://127.0.0.1:${up.port}`],
        server: { drain_timeout_ms: 300 },
        routes: [{ name: 'ws', prefix: '/ws', upstream: 'main', upgrade: ['websocket'], public: true }],
      }),
    });
    const c = connected(await openWs(`ws://127.0.0.1:${d.port}/ws/drain`, undefined, 'ws-drain'));
    assert.equal(await c.next(), 'welcome');
    const closed = once(c.ws, 'close');
    const upstreamClosedBefore = up.closed();
    const started = performance.now();
    d.child.kill('SIGTERM');
    // Still open while the drain waits: a message goes through.
    c.ws.send('still here');
    assert.equal(await c.next(), 'echo:still here');
    await closed;
    const [code] = await once(d.child, 'exit') as [number];
    assert.equal(code, 0);
    assert.ok(performance.now() - started >= 250, 'the tunnel lived until the drain deadline');
    assert.ok(d.lines.some((l) => l.msg === 'drain deadline passed: requests cut' && l.cut === 1), JSON.stringify(d.lines.filter((l) => String(l.msg).includes('drain'))));
    assert.ok(d.lines.some((l) => l.msg === 'request' && l.request_id === 'ws-drain' && l.status === 101));
    await pollUntil(async () => (up.closed() > upstreamClosedBefore ? true : undefined), 5000);
    assert.ok(up.closed() > upstreamClosedBefore, 'the upstream side of the tunnel was closed too');
  });

  it('the gateway stayed healthy', () => {
    assertGatewayHealthy(gw);
  });
});
