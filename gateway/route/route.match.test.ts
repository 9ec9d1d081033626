import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { parseConfig } from '../config/load.js';
import { checkRequestTarget } from '../http/request-target.js';
import { RequestContext } from '../pipeline/context.js';
import { FINAL, NONE, PREFIX, REDIRECT, type Found } from './path-level.js';
import { RouteTable } from './route-table.js';
import { hostName } from '../http/host-header.js';

// Which route a request gets, by nginx's location and server_name rules, decided by the
// route table the gateway builds (no process: the table is plain code over a config).

const HEAD = `plans: { free: { rate: 5 } }
upstreams: { main: { targets: [http://127.0.0.1:7001] } }
`;

interface Pick {
  readonly route: string | undefined;
  readonly found: Found;
  readonly vhost: string | undefined;
  readonly captures: string[] | undefined;
}

/** A table from YAML routes (and virtual hosts), and a function that routes a request through it. */
function router(yamlBody: string): (path: string, opts?: { method?: string; headers?: Record<string, string>; host?: string; listener?: string }) => Pick {
  const table = new RouteTable(parseConfig(HEAD + yamlBody));
  return (path, opts = {}) => {
    const headers = { ...(opts.host === undefined ? {} : { host: opts.host }), ...opts.headers };
    const req = { method: opts.method ?? 'GET', url: path, headers, headersDistinct: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])), socket: {} };
    const ctx = new RequestContext(req as unknown as IncomingMessage, {} as ServerResponse, 'id', path, 0);
    const target = checkRequestTarget(path);
    assert.ok(target.ok, `${path} is a valid target`);
    ctx.uri = target.uri;
    const hosts = table.forListener(opts.listener ?? 'default');
    if (hosts === undefined) return { route: undefined, found: NONE, vhost: undefined, captures: undefined };
    const vhost = hosts.find(hostName(opts.host) ?? 'invalid');
    const found = vhost.routes.find(ctx.uri, ctx);
    return {
      route: found === NONE ? undefined : ctx.compiledRoute!.config.name,
      found,
      vhost: vhost.config.name,
      captures: ctx.captures === undefined ? undefined : [...ctx.captures].slice(1) as string[],
    };
  };
}

describe('routes: nginx location precedence', () => {
  // The example of nginx's own documentation (ngx_http_core_module, "location").
  const route = router(`routes:
  - { name: A, exact: /, upstream: main }
  - { name: B, prefix: /, upstream: main }
  - { name: C, prefix: /documents/, upstream: main }
  - { name: D, prefix: /images/, prefix_priority: true, upstream: main }
  - { name: E, regex: '\\.(gif|jpg|jpeg)$', case_insensitive: true, upstream: main }
`);

  it('matches the documented example: = first, then ^~, then regexes, then the longest prefix', () => {
    assert.equal(route('/').route, 'A');
    assert.equal(route('/index.html').route, 'B');
    assert.equal(route('/documents/document.html').route, 'C');
    assert.equal(route('/images/1.gif').route, 'D', '^~ stops the regex search');
    assert.equal(route('/documents/1.jpg').route, 'E', 'a regex beats the longest prefix');
    assert.equal(route('/documents/1.JPG').route, 'E', '~* is case-insensitive');
  });

  it('says which kind of match it was', () => {
    assert.equal(route('/').found, FINAL);
    assert.equal(route('/x').found, PREFIX);
    assert.equal(route('/x.gif').found, FINAL);
  });

  it('tries regexes in file order, the first that matches wins', () => {
    const r = router(`routes:
  - { name: root, prefix: /, upstream: main }
  - { name: first, regex: '^/api/', upstream: main }
  - { name: second, regex: '^/api/v1/', upstream: main }
`);
    assert.equal(r('/api/v1/x').route, 'first', 'file order, not the longest regex');
    assert.equal(r('/other').route, 'root');
  });

  it('takes the longest prefix, not the first', () => {
    const r = router(`routes:
  - { name: short, prefix: /a, upstream: main }
  - { name: long, prefix: /a/b/c, upstream: main }
  - { name: mid, prefix: /a/b, upstream: main }
`);
    assert.equal(r('/a/b/c/d').route, 'long');
    assert.equal(r('/a/b/x').route, 'mid');
    assert.equal(r('/a/bx').route, 'mid', 'a prefix is a string prefix, as nginx: /a/b matches /a/bx');
    assert.equal(r('/ab').route, 'short');
    assert.equal(r('/b').route, undefined, 'no route: nothing matched');
  });

  it('an exact route and a prefix route of the same path: exact for the path itself, the prefix below it', () => {
    const r = router(`routes:
  - { name: ex, exact: /api, upstream: main }
  - { name: pre, prefix: /api, upstream: main }
`);
    assert.equal(r('/api').route, 'ex');
    assert.equal(r('/api/x').route, 'pre');
  });

  it('matches exactly on the normalised path', () => {
    const r = router(`routes:
  - { name: health, exact: /healthz, return: { status: 200, body: ok } }
  - { name: root, prefix: /, upstream: main }
`);
    assert.equal(r('/healthz').route, 'health');
    assert.equal(r('//healthz').route, 'health');
    assert.equal(r('/x/../healthz').route, 'health');
    assert.equal(r('/%68ealthz').route, 'health');
    assert.equal(r('/healthz/').route, 'root');
    assert.equal(r('/healthz?x=1').route, 'health', 'the query is not part of the path');
  });

  it('gives a regex route its captures', () => {
    const r = router(`routes:
  - { name: img, regex: '^/img/(\\d+)\\.(png|jpg)$', return: { status: 301, location: '/images/$1.$2' } }
`);
    assert.deepEqual(r('/img/42.png').captures, ['42', 'png']);
  });
});

describe('routes: nested routes, as nginx nested locations', () => {
  const route = router(`routes:
  - name: api
    prefix: /api/
    upstream: main
    routes:
      - { name: api-v1, prefix: /api/v1/ }
      - { name: api-php, regex: '\\.php$', return: { status: 403 } }
      - { name: api-health, exact: /api/health, return: { status: 200, body: ok } }
  - name: static
    prefix: /static/
    prefix_priority: true
    upstream: main
    routes:
      - { name: static-map, regex: '\\.map$', return: { status: 404 } }
  - { name: any-json, regex: '\\.json$', upstream: main }
  - { name: any-php, regex: '\\.php$', upstream: main }
`);

  it('a nested exact route ends the search', () => {
    assert.equal(route('/api/health').route, 'api-health');
  });

  it('a nested regex beats the outer regexes', () => {
    assert.equal(route('/api/x.php').route, 'api-php');
  });

  it('the outer regexes still beat a nested prefix (nginx tries them after the nested search finds only a prefix)', () => {
    assert.equal(route('/api/v1/x.json').route, 'any-json');
    assert.equal(route('/api/v1/x').route, 'api-v1');
  });

  it('^~ on the outer prefix stops the outer regexes, not the nested ones', () => {
    assert.equal(route('/static/app.json').route, 'static');
    assert.equal(route('/static/app.js.map').route, 'static-map');
  });

  it('the deepest prefix stands when no regex matches', () => {
    assert.equal(route('/api/v1/users').route, 'api-v1');
    assert.equal(route('/api/users').route, 'api');
  });
});

describe('routes: nested routes inherit what they do not set', () => {
  it('takes the action, limits and edits of the route it is nested in, and keeps its own', () => {
    const cfg = parseConfig(`${HEAD}limit_req_zones: { z: { key: client, rate: 10r/s } }
routes:
  - prefix: /api/
    upstream: main
    public: true
    max_body_bytes: 100
    limit_req: [{ zone: z, burst: 5 }]
    host: upstream
    request_headers: { set: { x-a: '1' } }
    rewrite: { replace_prefix: /v2/ }
    methods: [GET]
    routes:
      - { prefix: /api/x/, max_body_bytes: 5 }
      - { prefix: /api/y/, limit_req: [], return: { status: 204 } }
`);
    const [x, y] = cfg.routes[0]!.routes;
    assert.equal(x!.upstream, 'main');
    assert.equal(x!.public, true);
    assert.equal(x!.max_body_bytes, 5, 'its own');
    assert.deepEqual(x!.limit_req.map((l) => l.burst), [5]);
    assert.equal(x!.host, 'upstream');
    assert.deepEqual(x!.request_headers, { set: { 'x-a': '1' } });
    assert.deepEqual(x!.methods, ['GET']);
    assert.deepEqual(x!.rewrite, { replace_prefix: '/v2/' });
    assert.equal(x!.rewrite_base, '/api/', 'the inherited rewrite replaces the prefix of the route that wrote it');
    assert.equal(y!.upstream, undefined, 'a return of its own drops the inherited upstream');
    assert.equal(y!.rewrite, undefined);
    assert.deepEqual(y!.limit_req, [], 'a list given empty replaces the inherited one');
  });
});

describe('routes: methods and headers', () => {
  const route = router(`routes:
  - { name: write, prefix: /items, methods: [POST, PUT], upstream: main }
  - { name: canary, prefix: /items, headers: [{ name: x-canary, exact: '1' }], upstream: main }
  - { name: items, prefix: /items, upstream: main }
  - { name: root, prefix: /, upstream: main }
  - { name: beta-json, regex: '\\.json$', headers: [{ name: x-beta, present: true }], upstream: main }
  - { name: no-auth, exact: /login, headers: [{ name: authorization, absent: true }], upstream: main }
  - { name: ua, exact: /ua, headers: [{ name: user-agent, regex: '^curl/' }], upstream: main }
`);

  it('among routes with the same path, the first in file order whose conditions hold', () => {
    assert.equal(route('/items/1', { method: 'POST' }).route, 'write');
    assert.equal(route('/items/1', { headers: { 'x-canary': '1' } }).route, 'canary');
    assert.equal(route('/items/1', { method: 'POST', headers: { 'x-canary': '1' } }).route, 'write');
    assert.equal(route('/items/1').route, 'items');
  });

  it('a route whose conditions fail is as if it were not there', () => {
    assert.equal(route('/x.json', { headers: { 'x-beta': 'y' } }).route, 'beta-json');
    assert.equal(route('/x.json').route, 'root', 'falls back to the longest prefix');
    assert.equal(route('/login').route, 'no-auth');
    assert.equal(route('/login', { headers: { authorization: 'Bearer x' } }).route, 'root');
    assert.equal(route('/ua', { headers: { 'user-agent': 'curl/8.0' } }).route, 'ua');
    assert.equal(route('/ua', { headers: { 'user-agent': 'Mozilla' } }).route, 'root');
  });
});

describe('routes: nginx auto-redirect of a proxied directory', () => {
  const route = router(`routes:
  - { name: api, prefix: /api/, upstream: main }
  - { name: local, prefix: /local/, return: { status: 204 } }
  - { name: docs, prefix: /docs/, upstream: main }
  - { name: docs-bare, prefix: /docs, upstream: main }
  - { name: root, prefix: /, upstream: main }
  - { name: any, regex: 'api$', upstream: main }
`);

  it('/api gets the 301 to /api/ when /api/ proxies, before any regex', () => {
    assert.equal(route('/api').found, REDIRECT);
    assert.equal(route('/api').route, 'api');
  });

  it('not for a route that answers itself, nor when a route is that very path', () => {
    assert.equal(route('/local').route, 'root');
    assert.equal(route('/docs').route, 'docs-bare');
  });
});

describe('routes: virtual hosts by Host, as nginx server_name', () => {
  const route = router(`virtual_hosts:
  - { name: exact, server_names: [api.example.com], routes: [{ prefix: /, upstream: main }] }
  - { name: star, server_names: ['*.example.com'], routes: [{ prefix: /, upstream: main }] }
  - { name: deeper, server_names: ['*.img.example.com'], routes: [{ prefix: /, upstream: main }] }
  - { name: tail, server_names: ['mail.*'], routes: [{ prefix: /, upstream: main }] }
  - { name: regex, server_names: ['~^img(\\d+)\\.example\\.org$'], routes: [{ prefix: /, upstream: main }] }
  - { name: dotted, server_names: [.example.net], routes: [{ prefix: /, upstream: main }] }
  - { name: nohost, server_names: [''], routes: [{ prefix: /, upstream: main }] }
routes:
  - { prefix: /, upstream: main }
`);

  it('exact, then the longest *., then the longest .*, then regexes in order, else the default', () => {
    assert.equal(route('/', { host: 'api.example.com' }).vhost, 'exact');
    assert.equal(route('/', { host: 'API.Example.COM.:8080' }).vhost, 'exact', 'port, case and a trailing dot do not matter');
    assert.equal(route('/', { host: 'www.example.com' }).vhost, 'star');
    assert.equal(route('/', { host: 'a.b.example.com' }).vhost, 'star', '*. covers deeper names');
    assert.equal(route('/', { host: 'x.img.example.com' }).vhost, 'deeper', 'the longest wildcard');
    assert.equal(route('/', { host: 'mail.example.com' }).vhost, 'star', 'a leading wildcard ranks above a trailing one');
    assert.equal(route('/', { host: 'mail.example.org' }).vhost, 'tail');
    assert.equal(route('/', { host: 'IMG7.example.org' }).vhost, 'regex');
    assert.equal(route('/', { host: 'example.net' }).vhost, 'dotted');
    assert.equal(route('/', { host: 'w.example.net' }).vhost, 'dotted');
    assert.equal(route('/', { host: 'other.test' }).vhost, '(routes)', 'the top-level routes are the default');
    assert.equal(route('/').vhost, 'nohost', 'no Host: the "" name');
  });

  it('default_for makes a virtual host the default of a listener; else the first on it', () => {
    const r = router(`virtual_hosts:
  - { name: a, server_names: [a.test], routes: [{ prefix: /, upstream: main }] }
  - { name: b, server_names: [b.test], default_for: [default], routes: [{ prefix: /, upstream: main }] }
`);
    assert.equal(r('/', { host: 'zzz.test' }).vhost, 'b');
    const first = router(`virtual_hosts:
  - { name: a, server_names: [a.test], routes: [{ prefix: /, upstream: main }] }
  - { name: b, server_names: [b.test], routes: [{ prefix: /, upstream: main }] }
`);
    assert.equal(first('/', { host: 'zzz.test' }).vhost, 'a');
    assert.equal(first('/', { host: 'b.test' }).vhost, 'b');
  });
});
