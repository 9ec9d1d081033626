import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startBackend } from '../../test/harness/backend.js';
import { testConfig } from '../../test/harness/config.js';
import { sendExact } from '../../test/harness/exact-path.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { checkRequestTarget } from '../http/request-target.js';

// Routes match the normalised path, as nginx's $uri: the encoding and traversal tricks
// that get a probe past a deny rule written for the plain path do not.

describe('request target: nginx normalisation', () => {
  const norm = (url: string): { uri: string; forward: string } | string => {
    const t = checkRequestTarget(url);
    return t.ok ? { uri: t.uri, forward: t.forward } : t.reason;
  };

  it('decodes every escape, resolves . and .., and merges slashes', () => {
    assert.deepEqual(norm('/a//b'), { uri: '/a/b', forward: '/a/b' });
    assert.deepEqual(norm('/a/./b'), { uri: '/a/b', forward: '/a/b' });
    assert.deepEqual(norm('/a/../b'), { uri: '/b', forward: '/b' });
    assert.deepEqual(norm('/a/%2e%2E/b'), { uri: '/b', forward: '/b' });
    assert.deepEqual(norm('/a/.%2e/b?x=/../'), { uri: '/b', forward: '/b?x=/../' }, 'the query is not a path');
    assert.deepEqual(norm('/%41%7e/b%20c'), { uri: '/A~/b c', forward: '/%41%7e/b%20c' }, 'escapes are kept in what is forwarded');
    assert.deepEqual(norm('//x'), { uri: '/x', forward: '/x' });
    assert.deepEqual(norm('/a/b/..'), { uri: '/a/', forward: '/a/' });
    assert.deepEqual(norm('/a/b/.'), { uri: '/a/b/', forward: '/a/b/' });
    assert.deepEqual(norm('/a/..'), { uri: '/', forward: '/' });
    assert.deepEqual(norm('/%C3%A9'), { uri: '/\u00c3\u00a9', forward: '/%C3%A9' }, 'one character per byte, as nginx matches bytes');
    assert.deepEqual(norm('/plain/path'), { uri: '/plain/path', forward: '/plain/path' });
  });

  it('refuses climbing out of the root, bad escapes, NULs, encoded slashes and backslashes', () => {
    for (const bad of ['/..', '/a/../..', '/%2e%2e/x', '/a%', '/a%4', '/a%zz', '/a%00', '/a%2Fb', '/a%2f..', '/a\\b', '/a%5cb', 'x', '*']) {
      assert.equal(typeof norm(bad), 'string', bad);
    }
  });
});

describe('routes: encoding and traversal tricks against deny routes', () => {
  let backend: Awaited<ReturnType<typeof startBackend>>;
  let gw: GatewayProcess;

  before(async () => {
    backend = await startBackend();
    const cfg = testConfig({ upstreams: [backend.url] });
    cfg.routes = [
      { name: 'dotfiles', regex: '/\\.(env|git)', case_insensitive: true, upstream: 'main', access: [{ deny: 'all' }] },
      { name: 'admin', prefix: '/admin/', upstream: 'main', access: [{ allow: '10.0.0.0/8' }, { deny: 'all' }] },
      { name: 'api', prefix: '/api/', upstream: 'main', public: true },
      { name: 'root', prefix: '/', upstream: 'main', public: true },
    ];
    gw = await spawnGateway(cfg);
  });
  after(async () => { await gw.stop(); await backend.close(); });

  for (const path of [
    '/api/.env', '/api/%2e%2e/.env', '/api//.git/config', '/API/.env', '/api/.ENV', '/api/%2eenv', '/api/.%65nv',
    '/api/./.git/HEAD', '/api/x/../.git/HEAD', '/static/..%2f..%2f.env/../.env',
    '/admin/users', '//admin/users', '/x/../admin/users', '/%61dmin/users', '/api/../admin/users', '/./admin/x',
  ]) {
    it(`${path}: refused (403 by the deny rule, or 400 for an encoded slash)`, async () => {
      const r = await sendExact(gw.port, path);
      assert.ok(r.status === 403 || r.status === 400, `${path}: ${r.status} ${r.body}`);
      if (r.status === 400) assert.match(path, /%2f/i, 'only an encoded slash is refused before routing');
      assert.equal((r.json as { error: { code: string } }).error.code, r.status === 403 ? 'forbidden' : 'bad_request');
    });
  }

  it('%2F is refused outright: a backend may decode it into a path the gateway never saw', async () => {
    for (const path of ['/api%2F..%2F.env', '/admin%2Fusers', '/api/%2F.git']) {
      const r = await sendExact(gw.port, path);
      assert.equal(r.status, 400, path);
    }
  });

  it('forwards what it routed on: dot segments resolved, slashes merged, escapes as written', async () => {
    for (const [sent, forwarded] of [['/api//x', '/api/x'], ['/api/a/./b', '/api/a/b'], ['/api/a/../b', '/api/b'], ['/admin/../api/%41', '/api/%41'], ['/api/x?a=/../b', '/api/x?a=/../b']]) {
      const r = await sendExact(gw.port, sent!);
      assert.equal(r.status, 200, `${sent}: ${r.body}`);
      assert.equal((r.json as { url: string }).url, forwarded, sent);
    }
  });
});
