// safeFetch against local servers on 127.0.0.1 only. Hostnames are *.test names from an
// injected table resolver; every test injects a connector that refuses anything outside
// 127.0.0.0/8 before a socket exists, and asserts the guard refused before connecting.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageError } from '../image/types.js';
import { safeFetch, type SafeFetchOptions } from './safe-fetch.js';
import { loopbackOnlyConnect, startServer, tableResolver, type ConnectCall, type LocalServer } from './net-test-helpers.js';

const IMG = Buffer.alloc(1000, 7);
let srv: LocalServer;
let base: string;
let streamClosed: Promise<void>;
let markStreamClosed: () => void = () => undefined;
let streamChunksSent = 0;

before(async () => {
  srv = await startServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const p = url.pathname;
    if (p === '/img') {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': IMG.length });
      res.end(IMG);
    } else if (p === '/host') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(String(req.headers.host));
    } else if (p === '/big-declared') {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': 10_000 });
      res.end(Buffer.alloc(10_000));
    } else if (p === '/big-stream') {
      // Chunked, no length: the cap must be enforced while streaming. Bounded to 10 MB
      // so a broken cap fails the test rather than streaming forever.
      res.writeHead(200, { 'content-type': 'image/png' });
      let sent = 0;
      res.on('close', () => {
        streamChunksSent = sent;
        markStreamClosed();
      });
      const push = (): void => {
        while (sent < 10_000 && !res.destroyed) {
          sent++;
          if (!res.write(Buffer.alloc(1024))) return void res.once('drain', push);
        }
        res.end();
      };
      push();
    } else if (p === '/stall') {
      // Never answers: only the client's deadline ends this.
    } else if (p === '/stall-body') {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': 1000 });
      res.write(Buffer.alloc(10));
    } else if (p.startsWith('/loop/')) {
      const n = Number(p.slice('/loop/'.length));
      res.writeHead(302, { location: `/loop/${n + 1}` });
      res.end();
    } else if (p.startsWith('/chain/')) {
      const n = Number(p.slice('/chain/'.length));
      res.writeHead(n > 0 ? 301 : 200, n > 0 ? { location: `/chain/${n - 1}` } : { 'content-type': 'image/png' });
      res.end(n > 0 ? '' : IMG);
    } else if (p === '/redirect') {
      res.writeHead(Number(url.searchParams.get('status') ?? 302), { location: url.searchParams.get('to') ?? '' });
      res.end();
    } else if (p === '/nolocation') {
      res.writeHead(302);
      res.end();
    } else if (p.startsWith('/status/')) {
      res.writeHead(Number(p.slice('/status/'.length)), { 'content-type': 'text/plain' });
      res.end('nope');
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  base = `http://127.0.0.1:${srv.port}`;
});

after(() => srv.close());

interface Harness {
  readonly opts: SafeFetchOptions;
  readonly connects: ConnectCall[];
  readonly lookups: string[];
}

function harness(over: Partial<SafeFetchOptions> = {}, table: Record<string, string | string[] | string[][]> = {}): Harness {
  const connects: ConnectCall[] = [];
  const lookups: string[] = [];
  return {
    connects,
    lookups,
    opts: {
      maxBytes: 5000,
      timeoutMs: 3000,
      maxRedirects: 3,
      allow: ['127.0.0.1'],
      resolve: tableResolver(
        {
          'ok.test': '127.0.0.1',
          'evil.test': '10.0.0.1',
          'metadata.test': '169.254.169.254',
          'v6loop.test': '::1',
          'mapped.test': '::ffff:127.0.0.2',
          'mixed.test': ['127.0.0.1', '10.0.0.1'],
          'rebind.test': [['127.0.0.1'], ['10.0.0.1']],
          ...table,
        },
        lookups,
      ),
      connect: loopbackOnlyConnect(connects),
      ...over,
    },
  };
}

async function rejectsWith(p: Promise<unknown>, status: number, code: string): Promise<ImageError> {
  const err = await p.then(
    () => assert.fail(`expected ${status} ${code}, got success`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ImageError, `expected ImageError, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  assert.equal(err.status, status);
  return err;
}

const redirectTo = (to: string, status = 302): string =>
  `${base}/redirect?status=${status}&to=${encodeURIComponent(to)}`;

// Generous per-test bound so a hang fails fast instead of stalling the whole run.
const T = { timeout: 180_000 };

describe('safeFetch: happy paths', T, () => {
  test('fetches an allow-listed IP literal', async () => {
    const h = harness();
    const r = await safeFetch(`${base}/img`, h.opts);
    assert.deepEqual(r.body, IMG);
    assert.equal(r.contentType, 'image/png');
    assert.equal(r.finalUrl, `${base}/img`);
    assert.deepEqual(h.connects, [{ address: '127.0.0.1', port: srv.port, host: '127.0.0.1' }]);
    assert.deepEqual(h.lookups, [], 'an IP literal needs no lookup');
  });

  test('works with the default connector for a loopback literal', async () => {
    const r = await safeFetch(`${base}/img`, { maxBytes: 5000, timeoutMs: 3000, maxRedirects: 0, allow: ['127.0.0.1'] });
    assert.equal(r.body.length, IMG.length);
  });

  test('connects to the checked IP but sends the name as Host', async () => {
    const h = harness();
    const r = await safeFetch(`http://ok.test:${srv.port}/host`, h.opts);
    assert.equal(r.body.toString(), `ok.test:${srv.port}`);
    assert.deepEqual(h.connects, [{ address: '127.0.0.1', port: srv.port, host: 'ok.test' }]);
    assert.deepEqual(h.lookups, ['ok.test'], 'exactly one lookup per connection: nothing to race');
  });

  test('follows redirects up to the cap, relative Locations included', async () => {
    const h = harness();
    const r = await safeFetch(`${base}/chain/3`, h.opts);
    assert.deepEqual(r.body, IMG);
    assert.equal(r.finalUrl, `${base}/chain/0`);
    assert.equal(h.connects.length, 4, 'one fresh, guarded connection per hop');
  });
});

describe('safeFetch: refusals before any connection', T, () => {
  test('loopback is refused without the allow-list', async () => {
    const h = harness({ allow: [] });
    await rejectsWith(safeFetch(`${base}/img`, h.opts), 422, 'forbidden_destination');
    await rejectsWith(safeFetch(`http://ok.test:${srv.port}/img`, h.opts), 422, 'forbidden_destination');
    assert.deepEqual(h.connects, []);
  });

  for (const [name, url] of [
    ['private name', 'http://evil.test/x'],
    ['metadata name', 'http://metadata.test/latest/meta-data/'],
    ['IPv6 loopback name (v4-only allow-list)', 'http://v6loop.test/'],
    ['mapped IPv6 outside the allow-list', 'http://mapped.test/'],
    ['metadata literal', 'http://169.254.169.254/latest/meta-data/'],
    ['private literal', 'http://10.0.0.1/'],
    ['IPv6 loopback literal', 'http://[::1]:8080/'],
    ['IPv4-mapped IPv6 literal', 'http://[::ffff:169.254.169.254]/'],
    ['unspecified address', 'http://0.0.0.0/'],
    ['name with one private answer among public-looking ones', 'http://mixed.test/'],
  ] as const) {
    test(`direct: ${name}`, async () => {
      const h = harness();
      await rejectsWith(safeFetch(url, h.opts), 422, 'forbidden_destination');
      assert.deepEqual(h.connects, [], 'the guard must refuse before connect is called');
    });

    test(`after a redirect: ${name}`, async () => {
      const h = harness();
      await rejectsWith(safeFetch(redirectTo(url, 307), h.opts), 422, 'forbidden_destination');
      assert.equal(h.connects.length, 1, 'only the first, allowed hop connected');
      assert.equal(h.connects[0]!.address, '127.0.0.1');
    });
  }

  test('DNS rebinding: the second lookup of the same name is checked again', async () => {
    // First answer is loopback (allowed, and the first hop connects); the redirect to the
    // same name resolves again, now to a private address, and must be refused.
    const h2 = harness();
    const first = `http://rebind.test:${srv.port}/redirect?to=${encodeURIComponent(`http://rebind.test:${srv.port}/img`)}`;
    await rejectsWith(safeFetch(first, h2.opts), 422, 'forbidden_destination');
    assert.deepEqual(h2.lookups, ['rebind.test', 'rebind.test']);
    assert.deepEqual(
      h2.connects.map((c) => c.address),
      ['127.0.0.1'],
    );
  });

  for (const url of ['file:///etc/passwd', 'ftp://127.0.0.1/x', 'gopher://127.0.0.1:70/_x', 'data:image/png;base64,AA==', 'javascript:alert(1)', 'not a url', '/relative']) {
    test(`scheme/URL refused: ${url}`, async () => {
      const h = harness();
      const err = await rejectsWith(safeFetch(url, h.opts), 400, 'bad_request');
      assert.equal(err.field, 'url');
      assert.deepEqual(h.connects, []);
      assert.deepEqual(h.lookups, []);
    });
  }

  test('redirect to a non-http scheme is refused', async () => {
    for (const to of ['file:///etc/passwd', 'gopher://127.0.0.1:70/_x', 'ftp://127.0.0.1/']) {
      const h = harness();
      await rejectsWith(safeFetch(redirectTo(to), h.opts), 422, 'bad_redirect');
      assert.equal(h.connects.length, 1);
    }
  });

  test('credentials in the URL are refused, also after a redirect', async () => {
    const h = harness();
    await rejectsWith(safeFetch(`http://user:pw@127.0.0.1:${srv.port}/img`, h.opts), 400, 'bad_request');
    await rejectsWith(safeFetch(`http://user@ok.test:${srv.port}/img`, h.opts), 400, 'bad_request');
    assert.deepEqual(h.connects, []);
    await rejectsWith(safeFetch(redirectTo(`http://a:b@127.0.0.1:${srv.port}/img`), h.opts), 422, 'bad_redirect');
  });
});

describe('safeFetch: limits', T, () => {
  test('redirect cap', async () => {
    const h = harness({ maxRedirects: 3 });
    const before = srv.requests.length;
    await rejectsWith(safeFetch(`${base}/loop/0`, h.opts), 422, 'too_many_redirects');
    assert.equal(srv.requests.length - before, 4, 'the initial request and 3 redirects');
    const h0 = harness({ maxRedirects: 0 });
    await rejectsWith(safeFetch(`${base}/chain/1`, h0.opts), 422, 'too_many_redirects');
  });

  test('redirect without Location', async () => {
    await rejectsWith(safeFetch(`${base}/nolocation`, harness().opts), 422, 'bad_redirect');
  });

  test('size cap from Content-Length', async () => {
    await rejectsWith(safeFetch(`${base}/big-declared`, harness().opts), 413, 'payload_too_large');
  });

  test('size cap while streaming aborts the connection', { timeout: 180_000 }, async () => {
    streamClosed = new Promise((resolve) => (markStreamClosed = resolve));
    await rejectsWith(safeFetch(`${base}/big-stream`, harness({ maxBytes: 20_000 }).opts), 413, 'payload_too_large');
    // The server side sees its response torn down long before its 10 MB are sent.
    // (If the client merely stopped reading, the server would block on drain and this
    // wait would hit the test timeout instead.)
    await streamClosed;
    assert.ok(streamChunksSent < 10_000, `server got to send ${streamChunksSent} of 10000 chunks`);
  });

  test('overall timeout when the server never answers', async () => {
    const t0 = Date.now();
    await rejectsWith(safeFetch(`${base}/stall`, harness({ timeoutMs: 300 }).opts), 504, 'upstream_timeout');
    const took = Date.now() - t0;
    assert.ok(took >= 250 && took < 2000, `took ${took} ms`);
  });

  test('overall timeout when the body stalls', async () => {
    await rejectsWith(safeFetch(`${base}/stall-body`, harness({ timeoutMs: 300 }).opts), 504, 'upstream_timeout');
  });

  test('overall timeout when the resolver hangs', async () => {
    const h = harness({ timeoutMs: 200, resolve: () => new Promise(() => undefined) });
    await rejectsWith(safeFetch('http://slow.test/img', h.opts), 504, 'upstream_timeout');
    assert.deepEqual(h.connects, []);
  });
});

describe('safeFetch: upstream failures', T, () => {
  for (const status of [400, 404, 500, 503]) {
    test(`HTTP ${status} → 422 fetch_failed`, async () => {
      const err = await rejectsWith(safeFetch(`${base}/status/${status}`, harness().opts), 422, 'fetch_failed');
      assert.match(err.message, new RegExp(String(status)));
    });
  }

  test('unknown name → 422 fetch_failed', async () => {
    const h = harness();
    await rejectsWith(safeFetch('http://nxdomain.test/img', h.opts), 422, 'fetch_failed');
    assert.deepEqual(h.connects, []);
  });

  test('connection refused → 422 fetch_failed', async () => {
    const closed = await startServer(() => undefined);
    const port = closed.port;
    await closed.close();
    await rejectsWith(safeFetch(`http://127.0.0.1:${port}/img`, harness().opts), 422, 'fetch_failed');
  });
});

describe('safeFetch: https', T, () => {
  let dir: string | undefined;
  let cert: Buffer | undefined;
  let key: Buffer | undefined;
  try {
    dir = mkdtempSync(join(tmpdir(), 'sluice-net-'));
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
        '-subj', '/CN=img.test', '-addext', 'subjectAltName=DNS:img.test',
        '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem')],
      { stdio: 'ignore' },
    );
    cert = readFileSync(join(dir, 'c.pem'));
    key = readFileSync(join(dir, 'k.pem'));
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }

  test('TLS to the checked IP, with SNI and certificate identity from the name', async () => {
    assert.ok(cert && key, 'openssl produced a test certificate');
    let sni: string | undefined;
    const server = createHttpsServer({ cert, key }, (req, res) => {
      sni = (req.socket as import('node:tls').TLSSocket).servername || undefined;
      res.writeHead(200, { 'content-type': 'image/png' });
      res.end(IMG);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const h = harness({ ca: cert }, { 'img.test': '127.0.0.1', 'other.test': '127.0.0.1' });
      const r = await safeFetch(`https://img.test:${port}/x`, h.opts);
      assert.deepEqual(r.body, IMG);
      assert.equal(sni, 'img.test');
      assert.deepEqual(h.connects, [{ address: '127.0.0.1', port, host: 'img.test' }]);
      // Same IP, wrong name: the certificate is checked against the name, not the IP.
      await rejectsWith(safeFetch(`https://other.test:${port}/x`, h.opts), 422, 'fetch_failed');
      // Without the test CA the self-signed certificate is not trusted.
      await rejectsWith(safeFetch(`https://img.test:${port}/x`, harness({}, { 'img.test': '127.0.0.1' }).opts), 422, 'fetch_failed');
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
