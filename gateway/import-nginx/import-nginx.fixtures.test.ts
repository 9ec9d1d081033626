import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { parse } from 'yaml';
import { CLI } from '../../test/harness/gateway.js';
import { HANDLERS } from './directives/index.js';
import { parseNginxFile, type Directive } from './parse.js';

// Tests run from dist/; the fixtures stay in the source tree.
const FIXTURES = fileURLToPath(new URL('../../../gateway/import-nginx/fixtures/', import.meta.url));
const out = mkdtempSync(join(tmpdir(), 'sluice-import-fixtures-'));
after(() => rmSync(out, { recursive: true, force: true }));

interface Run { code: number; stdout: string; stderr: string }

function sluice(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

interface Report {
  translated: number;
  untranslated: { file: string; line: number; directive: string; reason: string }[];
  notes: { file: string; line: number; directive: string; reason: string }[];
  errors: string[];
}

/**
 * Imports a fixture with the real CLI, checks the output with the real `--check`, returns
 * both. `prepare` gets a copy of the fixture to complete first (certificates).
 */
async function importFixture(name: string, prepare?: (dir: string) => Promise<void>): Promise<{ cfg: Record<string, any>; report: Report; run: Run }> {
  const yamlFile = join(out, `${name}.yaml`);
  const reportFile = join(out, `${name}.report.json`);
  let dir = join(FIXTURES, name);
  if (prepare !== undefined) {
    const copy = join(out, name);
    cpSync(dir, copy, { recursive: true });
    await prepare(copy);
    dir = copy;
  }
  const run = await sluice(['import-nginx', join(dir, 'nginx.conf'), '--out', yamlFile, '--report', reportFile]);
  assert.equal(run.code, 0, run.stderr);
  const check = await sluice(['--check', yamlFile]);
  assert.equal(check.code, 0, `sluice --check refused the import of ${name}:\n${check.stderr}`);
  const report = JSON.parse(readFileSync(reportFile, 'utf8')) as Report;
  // The stderr report lists the same items as the JSON one.
  for (const u of report.untranslated) assert.ok(run.stderr.includes(`${u.file}:${u.line}: ${u.directive} — `), `stderr misses ${u.file}:${u.line}`);
  return { cfg: parse(readFileSync(yamlFile, 'utf8')) as Record<string, any>, report, run };
}

// What the directive table consumes. Everything else must show up in the report.
const CONSUMED = new Set(HANDLERS.flatMap((h) => h.names));

/** No directive is silently dropped: each one not consumed is listed, by its own file:line. */
function assertNothingSilent(name: string, report: Report): void {
  const main = join(FIXTURES, name, 'nginx.conf');
  const listed = new Set([...report.untranslated, ...report.notes].map((u) => `${u.file}:${u.line}`));
  const walk = (ds: readonly Directive[], dataBlock: boolean): void => {
    for (const d of ds) {
      const at = `${relative(dirname(main), d.file)}:${d.line}`;
      if (!dataBlock && !CONSUMED.has(d.name)) assert.ok(listed.has(at), `${at}: ${d.name} is in neither the untranslated list nor the notes`);
      if (d.block !== undefined) walk(d.block, d.name === 'map');
    }
  };
  walk(parseNginxFile(main), false);
}

/** The balancing fixture's ssl_certificate files, made with openssl (a throwaway self-signed pair). */
async function withCertificate(dir: string): Promise<void> {
  mkdirSync(join(dir, 'ssl'));
  await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=example.com',
    '-addext', 'subjectAltName=DNS:example.com,DNS:www.example.com', '-keyout', join(dir, 'ssl/example.key'), '-out', join(dir, 'ssl/example.pem')]);
}

const places = (r: Report): string[] => r.untranslated.map((u) => `${u.file}:${u.line} ${u.directive}`);

// What every imported upstream gets under the default --upstream-policy nginx.
const NGINX_DEFAULTS = (targets: number) => ({
  outlier: { consecutive_failures: targets > 1 ? 1 : 0, base_ejection_ms: 10000, max_ejection_ms: 10000, max_ejection_percent: 100, count_5xx: false },
  retry: { attempts: targets - 1, statuses: [] }, connect_timeout_ms: 60000, headers_timeout_ms: 60000, body_timeout_ms: 60000,
});

describe('import-nginx: fixtures through the real CLI, accepted by sluice --check', () => {
  it('api-edge: limit_req per key header, limit_conn per IP, weighted upstream with keepalive', async () => {
    const { cfg, report } = await importFixture('api-edge');
    assert.deepEqual(cfg.listeners, [{ name: 'http-18080-127-0-0-1', host: '127.0.0.1', port: 18080 }]);
    assert.deepEqual(cfg.upstreams.api_backend, {
      targets: [
        { url: 'http://127.0.0.1:17001', weight: 3 },
        { url: 'http://127.0.0.1:17002', weight: 1, max_fails: 3, fail_timeout_ms: 10000 },
      ],
      // nginx's default method is smooth weighted round-robin; keepalive 32 is an idle
      // pool in nginx, not a cap, so it sets nothing
      balancer: 'weighted_round_robin', ...NGINX_DEFAULTS(2),
    });
    assert.deepEqual(cfg.limit_req_zones, {
      per_key: { kind: 'nginx_limit_req', key: 'header:x-api-key', rate: '5r/s', size: '10m' },
      per_ip: { kind: 'nginx_limit_req', key: 'client', rate: '600r/m', size: '10m' },
    });
    assert.deepEqual(cfg.limit_conn_zones, { addr: { key: 'client', size: '10m' } });
    assert.equal(cfg.virtual_hosts.length, 1);
    const vh = cfg.virtual_hosts[0];
    assert.deepEqual([vh.name, vh.server_names, vh.listeners, vh.default_for], ['api.example.com', ['api.example.com'], ['http-18080-127-0-0-1'], ['http-18080-127-0-0-1']]);
    assert.deepEqual(vh.routes, [
      {
        name: 'api.example.com/v1', prefix: '/v1/', upstream: 'api_backend', public: true, host: 'client', max_body_bytes: 1048576,
        timeouts: { headers_ms: 30000, body_ms: 30000 },
        limit_req: [{ zone: 'per_key', burst: 10, nodelay: true }], limit_req_status: 429,
        limit_conn: [{ zone: 'addr', max: 20 }], limit_conn_status: 429,
      },
      {
        // the location sets no limit_req, so it inherits the server's (nginx's rule); no
        // proxy_set_header Host: nginx sends $proxy_host
        name: 'api.example.com/health', prefix: '/health', upstream: '127-0-0-1-17003', public: true, host: '127.0.0.1:17003', max_body_bytes: 1048576,
        limit_req: [{ zone: 'per_ip', burst: 5 }], limit_req_status: 429, limit_conn_status: 429,
      },
      // nginx answers /v1 with a 301 to /v1/ (proxy_pass in location /v1/)
      { name: 'api.example.com/exact-v1', exact: '/v1', return: { status: 301, location: '$scheme://$host:$server_port/v1/$is_args$args' } },
      // no location / : nginx serves its root's files, Sluice answers 404 (listed)
      { name: 'api.example.com/no-location', prefix: '/', return: { status: 404 } },
    ]);
    assert.deepEqual(cfg.upstreams['127-0-0-1-17003'], { targets: ['http://127.0.0.1:17003'], balancer: 'round_robin', ...NGINX_DEFAULTS(1) });
    assert.deepEqual(places(report), [
      'nginx.conf:3 user www-data', 'nginx.conf:4 worker_processes auto', 'nginx.conf:5 pid /run/nginx.pid',
      'nginx.conf:6 error_log /var/log/nginx/error.log warn', 'nginx.conf:8 events', 'nginx.conf:9 worker_connections 1024',
      'nginx.conf:13 access_log /var/log/nginx/access.log', 'nginx.conf:14 sendfile on', 'nginx.conf:15 keepalive_timeout 65',
      'nginx.conf:29 server',
    ]);
    assertNothingSilent('api-edge', report);
  });

  it('multi-include: include globs, nested locations, ^~, delay=, limit_conn by header', async () => {
    const { cfg, report } = await importFixture('multi-include');
    assert.deepEqual(cfg.listeners, [{ name: 'http-18081', host: '127.0.0.1', port: 18081 }]);
    assert.deepEqual(cfg.upstreams, {
      images: { targets: ['http://127.0.0.1:17101', 'http://127.0.0.1:17102'], balancer: 'round_robin', ...NGINX_DEFAULTS(2) },
      results: { targets: ['http://127.0.0.1:17103'], balancer: 'round_robin', ...NGINX_DEFAULTS(1) },
    });
    assert.deepEqual(cfg.limit_req_zones.images_key, { kind: 'nginx_limit_req', key: 'header:x-api-key', rate: '10r/s', size: '10m' });
    assert.deepEqual(cfg.limit_req_zones.results_ip, { kind: 'nginx_limit_req', key: 'client', rate: '120r/m', size: '5m' });
    assert.deepEqual(cfg.limit_conn_zones, { key_conn: { key: 'header:x-api-key', size: '10m' } });
    const routes = cfg.virtual_hosts[0].routes.filter((r: any) => r.upstream !== undefined);
    assert.deepEqual(routes.map((r: any) => [r.prefix, r.upstream, r.limit_req, r.limit_conn, r.limit_conn_status, r.request_headers, r.max_body_bytes]), [
      ['/v1/images', 'images', [{ zone: 'images_key', burst: 20, delay: 5 }], [{ zone: 'key_conn', max: 4 }], 429, { set: { 'x-real-ip': '$remote_addr' } }, 26214400],
      // nested: its own limit_req replaces the parent's; limit_conn, its status and the
      // parent's proxy_set_header (it sets none) are inherited
      ['/v1/images/fetch', 'images', [{ zone: 'images_key', burst: 2 }], [{ zone: 'key_conn', max: 4 }], 429, { set: { 'x-real-ip': '$remote_addr' } }, 26214400],
      ['/v1/results/', 'results', [{ zone: 'results_ip', burst: 60, nodelay: true }], undefined, undefined, undefined, 26214400],
      // proxy_pass http://images/ on location / replaces "/" with "/": the path is unchanged
      ['/', 'images', undefined, undefined, undefined, undefined, 26214400],
    ]);
    assert.equal(routes[2].prefix_priority, true);
    assert.deepEqual(places(report), ['nginx.conf:2 events']);
    assertNothingSilent('multi-include', report);
  });

  it('balancing: least_conn, random two, backup, down; TLS, regex/exact/named locations, if-host, rewrite, try_files', async () => {
    const { cfg, report } = await importFixture('balancing', withCertificate);
    const certDir = join(out, 'balancing', 'ssl');
    assert.deepEqual(cfg.listeners, [
      { name: 'https-8443', host: '127.0.0.1', port: 8443, tls: { certificates: [{ cert: join(certDir, 'example.pem'), key: join(certDir, 'example.key'), hosts: ['example.com', 'www.example.com'] }] } },
      { name: 'http-80', host: '127.0.0.1', port: 80 },
    ]);
    // least_conn → least_outstanding; backup stays a backup; down is not imported
    assert.deepEqual(cfg.upstreams.app, {
      targets: [{ url: 'http://10.0.0.1:8080', max_fails: 2, fail_timeout_ms: 5000 }, { url: 'http://10.0.0.2:8080', backup: true }],
      balancer: 'least_outstanding', ...NGINX_DEFAULTS(2),
    });
    // random two least_conn → p2c_ewma (noted), weights kept
    assert.deepEqual(cfg.upstreams.pool2, { targets: ['http://app1.internal:9000', { url: 'http://app2.internal:9000', weight: 2 }], balancer: 'p2c_ewma', ...NGINX_DEFAULTS(2) });
    for (const line of [15, 23]) assert.ok(report.notes.some((n) => n.line === line), `nginx.conf:${line} is noted`);
    assert.deepEqual(Object.keys(cfg.limit_req_zones), ['byauth']);
    const [ifHost, main, redirect] = cfg.virtual_hosts;
    // certbot's if ($host = …) { return 301 … }: a virtual host of its own for that name
    assert.deepEqual(ifHost, { name: 'example.com/if-host-www.example.com', server_names: ['www.example.com'], listeners: ['https-8443'],
      routes: [{ name: 'example.com/if-host-www.example.com/all', prefix: '/', return: { status: 301, location: 'https://example.com$request_uri' } }] });
    assert.deepEqual([main.name, main.server_names, main.default_for], ['example.com', ['example.com'], ['https-8443']]);
    const byName = new Map(main.routes.map((r: any) => [r.name, r]));
    assert.deepEqual(byName.get('example.com/rewrite-40'), { name: 'example.com/rewrite-40', regex: '^/old/(.*)$', return: { status: 301, location: '$scheme://$host:$server_port/new/$1$is_args$args' } });
    assert.deepEqual(byName.get('example.com/re-php'), { name: 'example.com/re-php', regex: '\\.php$', upstream: 'app', public: true, host: 'app', max_body_bytes: 1048576 });
    assert.deepEqual(byName.get('example.com/exact-healthz'), { name: 'example.com/exact-healthz', exact: '/healthz', return: { status: 200, body: 'ok\n', content_type: 'text/plain' } });
    assert.deepEqual(byName.get('example.com/api'), { name: 'example.com/api', prefix: '/api/', upstream: 'pool2', public: true, rewrite: { replace_prefix: '/v2/' }, host: 'pool2', max_body_bytes: 1048576 });
    assert.deepEqual((byName.get('example.com/ws') as any).upgrade, ['websocket']);
    // Static files: 501 not_migrated for exactly that location's paths
    const stat = byName.get('example.com/re-static') as any;
    assert.deepEqual([stat.regex, stat.case_insensitive, stat.return.status, stat.return.error.code], ['^/static/', true, 501, 'not_migrated']);
    // try_files $uri @fallback: proxied as @fallback does, with this location's limits (files on disk listed)
    assert.deepEqual(byName.get('example.com/root'), { name: 'example.com/root', prefix: '/', upstream: 'app', public: true, host: 'app', max_body_bytes: 1048576,
      limit_req: [{ zone: 'byauth', burst: 5, delay: 2 }] });
    assert.deepEqual(redirect.routes, [{ name: 'example.com-2/return', prefix: '/', return: { status: 301, location: 'https://$host$request_uri' } }]);
    const byLine = new Map(report.untranslated.map((u) => [`${u.line} ${u.directive}`, u.reason]));
    const must: [string, RegExp][] = [
      ['8 map $http_upgrade $connection_upgrade', /variables/],
      ['17 server 10.0.0.3:8080 down', /not imported/],
      ['19 keepalive_timeout 60s', /./],
      ['28 limit_req_zone $request_uri zone=byuri:1m rate=1r/s', /client address .* header/],
      ['32 listen 8443 ssl http2', /http2/],
      ['45 location ~* ^/static/', /no proxy_pass/],
      ['57 try_files $uri @fallback', /files that exist on disk .* are served by nginx/],
      ['55 zone byuri', /byuri .*not translated/],
    ];
    for (const [key, re] of must) {
      assert.ok(byLine.has(key), `missing from the report: nginx.conf:${key}\n${places(report).join('\n')}`);
      assert.match(byLine.get(key)!, re, key);
    }
    for (const u of report.untranslated) assert.equal(u.file, 'nginx.conf');
    for (const line of [14, 15, 16, 23, 25, 37, 38, 40, 42, 48, 61, 73]) assert.ok(!report.untranslated.some((u) => u.line === line), `nginx.conf:${line} is translated now`);
    assertNothingSilent('balancing', report);
  });
});

describe('import-nginx: CLI errors', () => {
  it('exits 1 on a parse error, naming file:line (also in --report)', async () => {
    const dir = mkdtempSync(join(out, 'bad-'));
    writeFileSync(join(dir, 'nginx.conf'), 'http {\n  include inner.conf;\n}\n');
    writeFileSync(join(dir, 'inner.conf'), 'server {\n  listen 80\n}\n');
    const reportFile = join(dir, 'r.json');
    const run = await sluice(['import-nginx', join(dir, 'nginx.conf'), '--out', join(dir, 'o.yaml'), '--report', reportFile]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /parse error: inner\.conf:3: unexpected "}"/);
    assert.deepEqual((JSON.parse(readFileSync(reportFile, 'utf8')) as Report).errors, ['inner.conf:3: unexpected "}"']);
  });

  it('exits 1 when there is no server to import, 2 on bad usage; --config/--check still work', async () => {
    const dir = mkdtempSync(join(out, 'empty-'));
    writeFileSync(join(dir, 'nginx.conf'), 'events {}\nhttp { upstream u { server 127.0.0.1:9; } }\n');
    const run = await sluice(['import-nginx', join(dir, 'nginx.conf')]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /nothing to route/);
    // A server that only answers locally is a config of its own now (a return route).
    writeFileSync(join(dir, 'nginx.conf'), 'http { server { listen 80; location / { return 200; } } }\n');
    const local = await sluice(['import-nginx', join(dir, 'nginx.conf')]);
    assert.equal(local.code, 0, local.stderr);
    assert.deepEqual((parse(local.stdout) as any).virtual_hosts[0].routes[0].return, { status: 200 });
    assert.equal((await sluice(['import-nginx', join(dir, 'nginx.conf'), '--upstream-policy', 'envoy'])).code, 2);
    assert.equal((await sluice(['import-nginx'])).code, 2);
    assert.equal((await sluice(['import-nginx', 'a', 'b'])).code, 2);
    const check = await sluice(['--check', join(FIXTURES, 'nope.yaml')]);
    assert.equal(check.code, 1);
  });

  it('writes YAML to stdout without --out', async () => {
    const run = await sluice(['import-nginx', join(FIXTURES, 'api-edge', 'nginx.conf')]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal((parse(run.stdout) as { listeners: { port: number }[] }).listeners[0]!.port, 18080);
    assert.match(run.stderr, /directives translated, 10 untranslated/);
  });
});
