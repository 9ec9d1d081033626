import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { startBackend } from '../../test/harness/backend.js';
import { testConfig } from '../../test/harness/config.js';
import { sendExact } from '../../test/harness/exact-path.js';
import { CLI, spawnGateway } from '../../test/harness/gateway.js';
import { ConfigError, parseConfig } from '../config/load.js';

// Bad routing config is refused where it is written: every problem at once, each naming
// its field, at --check and on reload (where the running config keeps serving).

const HEAD = `plans: { free: { rate: 5 } }
upstreams: { main: { targets: [http://127.0.0.1:7001] } }
`;

function errorsOf(body: string): string[] {
  try {
    parseConfig(HEAD + body);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.errors];
    throw err;
  }
  assert.fail('the config was accepted');
}

const has = (errors: readonly string[], field: string, text: RegExp): void => {
  assert.ok(errors.some((e) => e.startsWith(`${field}: `) && text.test(e)), `no "${field}: ${String(text)}" in:\n${errors.join('\n')}`);
};

describe('routes config: conflicts', () => {
  it('refuses a route that can never be chosen: the same path as an earlier route without other conditions', () => {
    const e = errorsOf(`routes:
  - { prefix: /a/, upstream: main }
  - { prefix: /a/, upstream: main }
  - { exact: /x, methods: [GET], upstream: main }
  - { exact: /x, methods: [GET], upstream: main }
  - { exact: /x, methods: [POST], upstream: main }
  - { regex: '\\.php$', upstream: main }
  - { regex: '\\.php$', upstream: main }
  - { prefix: /p/, prefix_priority: true, methods: [GET], upstream: main }
  - { prefix: /p/, upstream: main }
`);
    has(e, 'routes[1]', /conflicts with routes\[0\], which matches the same prefix "\/a\/" for every method and header/);
    has(e, 'routes[3]', /conflicts with routes\[2\], which matches the same exact path "\/x" with the same methods and headers/);
    has(e, 'routes[6]', /conflicts with routes\[5\]/);
    has(e, 'routes[8].prefix_priority', /routes\[7\] has the same prefix/);
    assert.ok(!e.some((x) => x.startsWith('routes[4]')), 'a different method is another route');
    assert.equal(e.length, 4, e.join('\n'));
  });

  it('refuses nested routes outside their parent, or inside an exact or (for a path) a regex one', () => {
    const e = errorsOf(`routes:
  - prefix: /api/
    upstream: main
    routes:
      - { prefix: /other/ }
      - { exact: /api }
      - { regex: 'x$' }
      - prefix: /api/v1/
        routes: [{ prefix: /api/v2/ }]
  - exact: /x
    upstream: main
    routes: [{ regex: a }]
  - regex: '^/r/'
    upstream: main
    routes: [{ prefix: /r/x }]
`);
    has(e, 'routes[0].routes[0].prefix', /"\/other\/" is outside the route it is nested in \("\/api\/"\)/);
    has(e, 'routes[0].routes[1].exact', /outside/);
    has(e, 'routes[0].routes[3].routes[0].prefix', /"\/api\/v2\/" is outside the route it is nested in \("\/api\/v1\/"\)/);
    has(e, 'routes[1].routes[0]', /cannot be nested in an exact route/);
    has(e, 'routes[2].routes[0]', /only regex routes can be nested in a regex route/);
    assert.equal(e.length, 5, e.join('\n'));
  });

  it('refuses a route without exactly one path form, or without an action of its own or inherited', () => {
    const e = errorsOf(`routes:
  - { prefix: /a, exact: /a, upstream: main }
  - { upstream: main }
  - { prefix: /b, upstream: main, return: { status: 204 } }
  - { prefix: /c }
  - { prefix: /d, case_insensitive: true, upstream: main }
  - { regex: d, prefix_priority: true, upstream: main }
  - { prefix: /e, upstream: nope }
`);
    has(e, 'routes[0]', /exactly one of exact, prefix or regex \(got exact, prefix\)/);
    has(e, 'routes[1]', /exactly one of exact, prefix or regex \(got none\)/);
    has(e, 'routes[2]', /either upstream or return, not both/);
    has(e, 'routes[3]', /needs upstream or return/);
    has(e, 'routes[4].case_insensitive', /only a regex route/);
    has(e, 'routes[5].prefix_priority', /only a prefix route/);
    has(e, 'routes[6].upstream', /unknown upstream "nope"/);
  });
});

describe('routes config: regexes, variables, actions', () => {
  it('names an invalid regex, and one the linear-time engine cannot run, wherever it is', () => {
    const e = errorsOf(`routes:
  - { regex: '(a', upstream: main }
  - { regex: '(a)\\1', upstream: main }
  - { prefix: /h, headers: [{ name: x, regex: '[' }], upstream: main }
  - { prefix: /r, upstream: main, rewrite: { regex: '(?=x)', replacement: /y } }
virtual_hosts:
  - { name: v, server_names: ['~(a'], routes: [{ prefix: /, upstream: main }] }
`);
    has(e, 'routes[0].regex', /"\(a" is not a valid regex \(Unterminated group\)/);
    has(e, 'routes[1].regex', /cannot run in linear time/);
    has(e, 'routes[2].headers[0].regex', /not a valid regex/);
    has(e, 'routes[3].rewrite.regex', /cannot run in linear time/);
    has(e, 'virtual_hosts[0].server_names[0]', /not a valid regex/);
  });

  it('names an unknown variable, and a capture the regex does not have', () => {
    const e = errorsOf(`routes:
  - { prefix: /a, return: { status: 301, location: 'https://$hostname$request_uri' } }
  - { prefix: /b, upstream: main, request_headers: { set: { x-a: 'a$bogus' } }, response_headers: { add: { x-b: $nope } } }
  - { prefix: /c, upstream: main, host: '$server_name' }
  - { prefix: /d, return: { status: 301, location: '/$1' } }
  - { regex: '^/(e)$', return: { status: 200, body: '$2' } }
  - { prefix: /f, upstream: main, rewrite: { regex: '^/f(.*)', replacement: '/g$2' } }
`);
    has(e, 'routes[0].return.location', /unknown variable \$hostname \(known: \$scheme \$host/);
    has(e, 'routes[1].request_headers.set.x-a', /unknown variable \$bogus/);
    has(e, 'routes[1].response_headers.add.x-b', /unknown variable \$nope/);
    has(e, 'routes[2].host', /unknown variable \$server_name/);
    has(e, 'routes[3].return.location', /\$1 is no capture: this route has no regex with groups/);
    has(e, 'routes[4].return.body', /\$2 is no capture: the regex has 1 group/);
    has(e, 'routes[5].rewrite.replacement', /\$2 is no capture: the rewrite.regex has 1 group/);
  });

  it('names bad actions: return, access, rewrite, header edits', () => {
    const e = errorsOf(`routes:
  - { prefix: /a, return: { status: 200, location: /x } }
  - { prefix: /b, return: { status: 301 } }
  - { prefix: /c, return: { status: 200, error: { code: x, message: y } } }
  - { prefix: /d, upstream: main, access: [{ allow: 10.0.0.1/8 }, { deny: nonsense }, { allow: all, deny: all }] }
  - { regex: x, upstream: main, rewrite: { replace_prefix: / } }
  - { prefix: /e, upstream: main, rewrite: { strip_prefix: true, replace_prefix: / } }
  - { prefix: /f, return: { status: 204 }, rewrite: { strip_prefix: true } }
  - { prefix: /g, upstream: main, request_headers: { set: { host: x } }, response_headers: { remove: [x-request-id] } }
  - { prefix: /h, upstream: main, headers: [{ name: x, exact: a, present: true }] }
`);
    has(e, 'routes[0].return', /location needs a redirect status/);
    has(e, 'routes[1].return', /status 301 needs a location/);
    has(e, 'routes[2].return', /error needs a status >= 400/);
    has(e, 'routes[3].access[0]', /has bits set past \/8 \(did you mean 10\.0\.0\.0\/8\?\)/);
    has(e, 'routes[3].access[1]', /"nonsense" is not an address or CIDR block/);
    has(e, 'routes[3].access[2]', /exactly one of allow or deny/);
    has(e, 'routes[4].rewrite', /need a prefix or exact route/);
    has(e, 'routes[5].rewrite', /exactly one of replace_prefix, strip_prefix/);
    has(e, 'routes[6].rewrite', /answers itself/);
    has(e, 'routes[7].request_headers', /host: the gateway sets this request header itself \(use the route's host field\)/);
    has(e, 'routes[7].response_headers', /x-request-id/);
    has(e, 'routes[8].headers[0]', /exactly one of exact, regex, present: true or absent: true/);
  });
});

describe('routes config: virtual hosts and real_ip', () => {
  it('names bad server names, names claimed twice on a listener, unknown listeners, two defaults', () => {
    const e = errorsOf(`virtual_hosts:
  - { name: a, server_names: [a.test, 'b*c', '*.x.test'], routes: [{ prefix: /, upstream: main }] }
  - { name: b, server_names: [A.TEST, .x.test], default_for: [default], routes: [{ prefix: /, upstream: main }] }
  - { name: c, server_names: [c.test], listeners: [https], default_for: [default], routes: [{ prefix: /, upstream: main }] }
  - { name: a, server_names: [d.test], default_for: [default], routes: [{ prefix: /, upstream: main }] }
`);
    has(e, 'virtual_hosts[0].server_names[1]', /"b\*c" is not a server name/);
    has(e, 'virtual_hosts[1].server_names[0]', /"A.TEST" is also a name of virtual_hosts\[0\] on listener "default"/);
    has(e, 'virtual_hosts[1].server_names[1]', /also a name of virtual_hosts\[0\]/);
    has(e, 'virtual_hosts[2].listeners[0]', /unknown listener "https" \(listeners: default\)/);
    has(e, 'virtual_hosts[2].default_for[0]', /not one of its listeners/);
    has(e, 'virtual_hosts[3].name', /used by another virtual host/);
    has(e, 'virtual_hosts[3].default_for[0]', /virtual_hosts\[1\] is already the default/);
  });

  it('names a bad trusted CIDR, and needs at least one route somewhere', () => {
    const e = errorsOf(`server: { real_ip: { trusted: [10.0.0.0/33, nonsense] } }
routes: []
`);
    has(e, 'server.real_ip.trusted[0]', /prefix length must be 0 to 32/);
    has(e, 'server.real_ip.trusted[1]', /not an address or CIDR block/);
    has(e, 'routes', /needs at least one route/);
  });
});

describe('routes config: --check and reload', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-routes-config-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('--check exits 1 and lists every routing problem with its field', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, `${HEAD}routes:
  - { prefix: /a/, upstream: main }
  - { prefix: /a/, upstream: main }
  - { regex: '(a)\\1', upstream: main }
  - { prefix: /v, return: { status: 301, location: '$nope' } }
`);
    const r = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(process.execPath, [CLI, '--check', file], { timeout: 10_000 }, (err, _out, stderr) => resolve({ code: err === null ? 0 : Number(err.code), stderr }));
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /3 error\(s\)/);
    assert.match(r.stderr, /routes\[1\]: conflicts with routes\[0\]/);
    assert.match(r.stderr, /routes\[2\]\.regex: .*linear time/);
    assert.match(r.stderr, /routes\[3\]\.return\.location: unknown variable \$nope/);
  });

  it('a reload with bad routes is refused and the running routes keep serving; a good one takes over', async () => {
    const backend = await startBackend();
    const cfg = testConfig({ upstreams: [backend.url] });
    cfg.routes = [{ name: 'v1', exact: '/which', return: { status: 200, body: 'one' } }, { prefix: '/', upstream: 'main', public: true }];
    const gw = await spawnGateway(cfg);
    try {
      assert.equal((await sendExact(gw.port, '/which')).body, 'one');
      const bad = { ...cfg, routes: [{ exact: '/which', return: { status: 200, body: '$bogus' } }, { regex: '(', upstream: 'main' }] };
      writeFileSync(gw.file, stringify(bad));
      gw.child.kill('SIGHUP');
      await gw.waitForLine((l) => l.msg === 'reload refused: the running config stays in force', 10_000);
      const errors = gw.lines.filter((l) => l.msg === 'config error').map((l) => String(l.error));
      assert.ok(errors.some((x) => x.startsWith('routes[0].return.body: unknown variable $bogus')), errors.join('\n'));
      assert.ok(errors.some((x) => x.startsWith('routes[1].regex:')), errors.join('\n'));
      assert.equal((await sendExact(gw.port, '/which')).body, 'one', 'the old routes serve on');
      writeFileSync(gw.file, stringify({ ...cfg, routes: [{ exact: '/which', return: { status: 200, body: 'two' } }, { prefix: '/', upstream: 'main', public: true }] }));
      gw.child.kill('SIGHUP');
      await gw.waitForLine((l) => typeof l.msg === 'string' && l.msg.startsWith('reload done'), 10_000);
      assert.equal((await sendExact(gw.port, '/which')).body, 'two');
    } finally {
      await gw.stop();
      await backend.close();
    }
  });
});
