import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startBackend } from '../../test/harness/backend.js';
import { testConfig } from '../../test/harness/config.js';
import { sendExact } from '../../test/harness/exact-path.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';

// What a route does once chosen, end to end through a real gateway and echo upstreams
// that report the path, Host and headers they received: local answers (return),
// rewrites, header edits, the Host policy, forwarding headers and per-route timeouts.

interface Echo { backend: string; url: string; headers: Record<string, string> }

describe('routes: actions', () => {
  let a: Awaited<ReturnType<typeof startBackend>>;
  let b: Awaited<ReturnType<typeof startBackend>>;
  let hang: Server;
  /** Resolves when the never-answering upstream has a request in hand. */
  let hangGotOne: Promise<void>;
  let gw: GatewayProcess;
  const A = (): string => `backend-${new URL(a.url).port}`;
  const B = (): string => `backend-${new URL(b.url).port}`;

  before(async () => {
    a = await startBackend();
    b = await startBackend();
    // Accepts and never answers: what per-route timeouts are for.
    let gotOne: () => void = () => undefined;
    hangGotOne = new Promise((r) => { gotOne = r; });
    hang = createServer(() => gotOne());
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    const cfg = testConfig({ upstreams: [a.url] });
    cfg.upstreams = {
      a: { targets: [a.url] },
      b: { targets: [b.url] },
      hang: { targets: [`http://127.0.0.1:${(hang.address() as AddressInfo).port}`], retry: { attempts: 0 } },
      // One connection, so a second request waits for it.
      single: { targets: [`http://127.0.0.1:${(hang.address() as AddressInfo).port}`], connections: 1, retry: { attempts: 0 } },
    };
    cfg.routes = [
      { name: 'health', exact: '/healthz', return: { status: 200, body: '{"ok":true}', content_type: 'application/json', headers: { 'cache-control': 'no-store' } } },
      { name: 'moved', prefix: '/old/', return: { status: 301, location: 'https://$host$request_uri' } },
      { name: 'img', regex: '^/img/(\\d+)\\.(png|jpg)$', return: { status: 302, location: '/images/$1?fmt=$2&from=$uri' } },
      { name: 'php', regex: '\\.php$', return: { status: 501, error: { code: 'not_migrated', message: 'nginx location ~ \\.php$ (site.conf:42) was not migrated; asked for $uri' } } },
      { name: 'gone', prefix: '/gone/', return: { status: 410 } },
      { name: 'v1', prefix: '/api/v1/', upstream: 'a', public: true, rewrite: { replace_prefix: '/' } },
      { name: 'v2', prefix: '/api/v2', upstream: 'a', public: true, rewrite: { replace_prefix: '/next/' } },
      { name: 'strip', prefix: '/strip', upstream: 'b', public: true, rewrite: { strip_prefix: true } },
      { name: 'swap', prefix: '/swap/', upstream: 'a', public: true, rewrite: { regex: '^/swap/(\\w+)/(.*)$', replacement: '/$2/$1' } },
      {
        name: 'edits', prefix: '/edits/', upstream: 'a', public: true,
        request_headers: { set: { 'x-env': 'prod', 'x-seen-uri': '$uri', 'x-from-absent': '$http_x_absent', 'user-agent': 'sluice' }, add: { 'x-multi': 'two' }, remove: ['x-debug'] },
        response_headers: { set: { 'x-served-by': 'sluice-$request_id' }, add: { 'strict-transport-security': 'max-age=63072000' }, remove: ['content-type'] },
      },
      { name: 'host-upstream', prefix: '/host/upstream/', upstream: 'a', public: true, host: 'upstream' },
      { name: 'host-fixed', prefix: '/host/fixed/', upstream: 'a', public: true, host: 'api.internal' },
      { name: 'host-var', prefix: '/host/var/', upstream: 'a', public: true, host: 'v-$host' },
      { name: 'xff', prefix: '/xff/', upstream: 'a', public: true, request_headers: { set: { 'x-forwarded-for': '$proxy_add_x_forwarded_for' } } },
      { name: 'slow', prefix: '/slow/', upstream: 'hang', public: true, timeouts: { headers_ms: 300 } },
      { name: 'queued', prefix: '/queued/', upstream: 'single', public: true, timeouts: { connect_ms: 300, headers_ms: 60_000 } },
      { name: 'to-https', prefix: '/r/', return: { status: 308, location: 'https://x.test$uri' } },
      { name: 'default', prefix: '/', upstream: 'b', public: true },
    ];
    gw = await spawnGateway(cfg);
  });
  after(async () => {
    await gw.stop();
    await a.close();
    await b.close();
    hang.closeAllConnections();
    hang.close();
  });

  const echo = async (path: string, headers: Record<string, string> = {}, host?: string): Promise<Echo> => {
    const r = await sendExact(gw.port, path, { headers, ...(host === undefined ? {} : { host }) });
    assert.equal(r.status, 200, `${path}: ${r.body}`);
    return r.json as unknown as Echo;
  };

  describe('return', () => {
    it('answers with a status, body, content type and headers, without any upstream', async () => {
      const r = await sendExact(gw.port, '/healthz');
      assert.equal(r.status, 200);
      assert.equal(r.body, '{"ok":true}');
      assert.equal(r.headers['content-type'], 'application/json');
      assert.equal(r.headers['cache-control'], 'no-store');
      assert.match(String(r.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    });

    it('redirects with $scheme $host $request_uri, and with regex captures and $uri', async () => {
      const r = await sendExact(gw.port, '/old/a%20b?x=1', { host: 'Example.COM:8080' });
      assert.equal(r.status, 301);
      assert.equal(r.headers.location, 'https://example.com/old/a%20b?x=1', '$host drops the port and lower-cases; $request_uri is as sent');
      const img = await sendExact(gw.port, '/img/42.png');
      assert.equal(img.status, 302);
      assert.equal(img.headers.location, '/images/42?fmt=png&from=/img/42.png');
    });

    it('escapes decoded path text in a Location, so a %0d%0a in the path cannot split the header', async () => {
      const r = await sendExact(gw.port, '/r/a%0d%0aset-cookie:%20x=1');
      assert.equal(r.status, 308);
      assert.equal(r.headers.location, 'https://x.test/r/a%0D%0Aset-cookie:%20x=1');
      assert.equal(r.headers['set-cookie'], undefined);
    });

    it('answers with the error envelope: a code of its own, or the one its status has', async () => {
      const r = await sendExact(gw.port, '/legacy/index.php');
      assert.equal(r.status, 501);
      const err = (r.json as { error: { code: string; message: string; request_id: string } }).error;
      assert.equal(err.code, 'not_migrated');
      assert.equal(err.message, 'nginx location ~ \\.php$ (site.conf:42) was not migrated; asked for /legacy/index.php');
      assert.equal(err.request_id, r.headers['x-request-id']);
      const gone = await sendExact(gw.port, '/gone/x');
      assert.equal(gone.status, 410);
      assert.equal((gone.json as { error: { code: string } }).error.code, 'gone');
    });

    it('a HEAD gets the status and headers without the body', async () => {
      const r = await sendExact(gw.port, '/healthz', { method: 'HEAD' });
      assert.equal(r.status, 200);
      assert.equal(r.body, '');
      assert.equal(r.headers['content-length'], '11');
    });
  });

  describe('rewrite', () => {
    it('replace_prefix is nginx\'s proxy_pass URI rule: the matched prefix replaced, the query kept', async () => {
      const r = await echo('/api/v1/users/7?full=1');
      assert.equal(r.backend, A());
      assert.equal(r.url, '/users/7?full=1');
      assert.equal((await echo('/api/v2/x')).url, '/next//x', 'nginx writes exactly prefix-replacement + the rest');
      assert.equal((await echo('/api/v2')).url, '/next/');
    });

    it('the rest of the path is sent decoded and re-escaped as nginx does when the client used escapes', async () => {
      assert.equal((await echo('/api/v1/a%20b/%41%7E')).url, '/a%20b/A~');
      assert.equal((await echo('/api/v1/x/../y')).url, '/y', 'dot segments resolved');
    });

    it('strip_prefix removes the prefix and keeps a leading slash', async () => {
      const r = await echo('/strip/a/b?q');
      assert.equal(r.backend, B());
      assert.equal(r.url, '/a/b?q');
      assert.equal((await echo('/stripped')).url, '/ped');
      assert.equal((await echo('/strip')).url, '/');
    });

    it('regex and replacement, with captures', async () => {
      assert.equal((await echo('/swap/users/7/profile?x=1')).url, '/7/profile/users?x=1');
    });

    it('without a rewrite the client\'s path goes as written, escapes kept', async () => {
      assert.equal((await echo('/plain/%41b?x=%20')).url, '/plain/%41b?x=%20');
    });
  });

  describe('headers', () => {
    it('sets, adds and removes request headers, with variables; a set that comes out empty sends nothing', async () => {
      const r = await echo('/edits/p?x=1', { 'x-debug': '1', 'x-from-absent': 'client value', 'x-env': 'dev', 'user-agent': 'curl' });
      assert.equal(r.headers['x-env'], 'prod', 'set replaces the client\'s');
      assert.equal(r.headers['x-seen-uri'], '/edits/p');
      assert.equal(r.headers['x-from-absent'], undefined, 'as nginx: proxy_set_header with an empty value drops the header');
      assert.equal(r.headers['user-agent'], 'sluice');
      assert.equal(r.headers['x-multi'], 'two');
      assert.equal(r.headers['x-debug'], undefined);
    });

    it('sets, adds and removes response headers', async () => {
      const r = await sendExact(gw.port, '/edits/p');
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-served-by'], `sluice-${String(r.headers['x-request-id'])}`);
      assert.equal(r.headers['strict-transport-security'], 'max-age=63072000');
      assert.equal(r.headers['content-type'], undefined);
    });
  });

  describe('Host and forwarding headers', () => {
    it('sends the client\'s Host by default, the target\'s with host: upstream, or a fixed name', async () => {
      assert.equal((await echo('/anything', {}, 'shop.example.com:8080')).headers.host, 'shop.example.com:8080');
      assert.equal((await echo('/host/upstream/x', {}, 'shop.example.com')).headers.host, new URL(a.url).host);
      assert.equal((await echo('/host/fixed/x', {}, 'shop.example.com')).headers.host, 'api.internal');
      assert.equal((await echo('/host/var/x', {}, 'Shop.Example.com:81')).headers.host, 'v-shop.example.com');
    });

    it('sets X-Real-IP; replaces an untrusted client\'s X-Forwarded-For; $proxy_add_x_forwarded_for appends like nginx', async () => {
      const r = await echo('/anything', { 'x-forwarded-for': '6.6.6.6', 'x-real-ip': '6.6.6.6' });
      assert.equal(r.headers['x-real-ip'], '127.0.0.1');
      assert.equal(r.headers['x-forwarded-for'], '127.0.0.1', 'the peer is no trusted proxy (server.real_ip): its list is not passed on');
      assert.equal(r.headers['x-forwarded-proto'], 'http');
      const nginxLike = await echo('/xff/', { 'x-forwarded-for': '6.6.6.6' });
      assert.equal(nginxLike.headers['x-forwarded-for'], '6.6.6.6, 127.0.0.1');
    });
  });

  describe('timeouts', () => {
    it('headers_ms overrides the upstream\'s: 504 once it passes', async () => {
      const r = await sendExact(gw.port, '/slow/x');
      assert.equal(r.status, 504);
      assert.equal((r.json as { error: { code: string } }).error.code, 'upstream_timeout');
    });

    it('connect_ms bounds the wait for a connection to the target', async () => {
      // The one pool connection is held by a request that never gets an answer.
      void sendExact(gw.port, '/queued/first').catch(() => undefined);
      await hangGotOne;
      const r = await sendExact(gw.port, '/queued/second');
      assert.equal(r.status, 504, r.body);
      assert.equal((r.json as { error: { code: string } }).error.code, 'upstream_timeout');
    });
  });
});
