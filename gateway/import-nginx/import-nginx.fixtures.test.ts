import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { parse } from 'yaml';
import { CLI } from '../../test/harness/gateway.js';
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

/** Imports a fixture with the real CLI, checks the output with the real `--check`, returns both. */
async function importFixture(name: string): Promise<{ cfg: Record<string, any>; report: Report; run: Run }> {
  const yamlFile = join(out, `${name}.yaml`);
  const reportFile = join(out, `${name}.report.json`);
  const run = await sluice(['import-nginx', join(FIXTURES, name, 'nginx.conf'), '--out', yamlFile, '--report', reportFile]);
  assert.equal(run.code, 0, run.stderr);
  const check = await sluice(['--check', yamlFile]);
  assert.equal(check.code, 0, `sluice --check refused the import of ${name}:\n${check.stderr}`);
  const report = JSON.parse(readFileSync(reportFile, 'utf8')) as Report;
  // The stderr report lists the same items as the JSON one.
  for (const u of report.untranslated) assert.ok(run.stderr.includes(`${u.file}:${u.line}: ${u.directive} — `), `stderr misses ${u.file}:${u.line}`);
  return { cfg: parse(readFileSync(yamlFile, 'utf8')) as Record<string, any>, report, run };
}

// What the converter consumes. Everything else must show up in the report.
const CONSUMED = new Set(['http', 'server', 'listen', 'location', 'proxy_pass', 'upstream', 'keepalive',
  'limit_req_zone', 'limit_conn_zone', 'limit_req', 'limit_conn', 'limit_req_status', 'limit_conn_status']);

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

const places = (r: Report): string[] => r.untranslated.map((u) => `${u.file}:${u.line} ${u.directive}`);

describe('import-nginx: fixtures through the real CLI, accepted by sluice --check', () => {
  it('api-edge: limit_req per key header, limit_conn per IP, weighted upstream with keepalive', async () => {
    const { cfg, report } = await importFixture('api-edge');
    assert.deepEqual(cfg.server, { host: '127.0.0.1', port: 18080 });
    assert.deepEqual(cfg.upstreams.api_backend, {
      targets: [
        { url: 'http://127.0.0.1:17001', weight: 3 },
        { url: 'http://127.0.0.1:17002', weight: 1, max_fails: 3, fail_timeout_ms: 10000 },
      ],
      // nginx's default method is smooth weighted round-robin; nginx caps no share of a group
      balancer: 'weighted_round_robin', outlier: { max_ejection_percent: 100 }, connections: 32,
    });
    assert.deepEqual(cfg.limit_req_zones, {
      per_key: { kind: 'nginx_limit_req', key: 'header:x-api-key', rate: '5r/s', size: '10m' },
      per_ip: { kind: 'nginx_limit_req', key: 'client', rate: '600r/m', size: '10m' },
    });
    assert.deepEqual(cfg.limit_conn_zones, { addr: { key: 'client', size: '10m' } });
    assert.deepEqual(cfg.routes, [
      {
        name: 'v1', prefix: '/v1/', upstream: 'api_backend', public: true,
        limit_req: [{ zone: 'per_key', burst: 10, nodelay: true }], limit_req_status: 429,
        limit_conn: [{ zone: 'addr', max: 20 }], limit_conn_status: 429,
      },
      {
        // the location sets no limit_req, so it inherits the server's (nginx's rule)
        name: 'health', prefix: '/health', upstream: '127-0-0-1-17003', public: true,
        limit_req: [{ zone: 'per_ip', burst: 5 }], limit_req_status: 429, limit_conn_status: 429,
      },
    ]);
    assert.deepEqual(cfg.upstreams['127-0-0-1-17003'], { targets: ['http://127.0.0.1:17003'] });
    assert.deepEqual(places(report), [
      'nginx.conf:3 user www-data', 'nginx.conf:4 worker_processes auto', 'nginx.conf:5 pid /run/nginx.pid',
      'nginx.conf:6 error_log /var/log/nginx/error.log warn', 'nginx.conf:8 events', 'nginx.conf:9 worker_connections 1024',
      'nginx.conf:13 access_log /var/log/nginx/access.log', 'nginx.conf:14 sendfile on', 'nginx.conf:15 keepalive_timeout 65',
      'nginx.conf:42 proxy_set_header Host $host', 'nginx.conf:43 proxy_read_timeout 30s',
    ]);
    assert.ok(report.notes.some((n) => n.line === 31 && /server_name/.test(n.directive)), 'server_name is noted');
    assertNothingSilent('api-edge', report);
  });

  it('multi-include: include globs, nested locations, ^~, delay=, limit_conn by header', async () => {
    const { cfg, report } = await importFixture('multi-include');
    assert.deepEqual(cfg.server, { host: '127.0.0.1', port: 18081 });
    assert.deepEqual(cfg.upstreams, {
      images: { targets: ['http://127.0.0.1:17101', 'http://127.0.0.1:17102'], balancer: 'round_robin', connections: 16 },
      results: { targets: ['http://127.0.0.1:17103'], balancer: 'round_robin' },
    });
    assert.deepEqual(cfg.limit_req_zones.images_key, { kind: 'nginx_limit_req', key: 'header:x-api-key', rate: '10r/s', size: '10m' });
    assert.deepEqual(cfg.limit_req_zones.results_ip, { kind: 'nginx_limit_req', key: 'client', rate: '120r/m', size: '5m' });
    assert.deepEqual(cfg.limit_conn_zones, { key_conn: { key: 'header:x-api-key', size: '10m' } });
    assert.deepEqual(cfg.routes.map((r: any) => [r.prefix, r.upstream, r.limit_req, r.limit_conn, r.limit_conn_status]), [
      ['/v1/images', 'images', [{ zone: 'images_key', burst: 20, delay: 5 }], [{ zone: 'key_conn', max: 4 }], 429],
      // nested: its own limit_req replaces the parent's; limit_conn and its status are inherited
      ['/v1/images/fetch', 'images', [{ zone: 'images_key', burst: 2 }], [{ zone: 'key_conn', max: 4 }], 429],
      ['/v1/results/', 'results', [{ zone: 'results_ip', burst: 60, nodelay: true }], undefined, undefined],
      // proxy_pass http://images/ on location / replaces "/" with "/": the path is unchanged
      ['/', 'images', undefined, undefined, undefined],
    ]);
    assert.deepEqual(places(report), [
      'nginx.conf:2 events', 'nginx.conf:11 client_max_body_size 25m', 'snippets/proxy.conf:3 proxy_set_header X-Real-IP $remote_addr',
    ]);
    assertNothingSilent('multi-include', report);
  });

  it('balancing: least_conn, random two, backup, down, regex/exact/named locations, map/if/rewrite, TLS are all reported', async () => {
    const { cfg, report } = await importFixture('balancing');
    assert.deepEqual(cfg.server, { host: '127.0.0.1', port: 8443 });
    // least_conn → least_outstanding; backup stays a backup; down is not imported
    assert.deepEqual(cfg.upstreams.app, {
      targets: [{ url: 'http://10.0.0.1:8080', max_fails: 2, fail_timeout_ms: 5000 }, { url: 'http://10.0.0.2:8080', backup: true }],
      balancer: 'least_outstanding', outlier: { max_ejection_percent: 100 }, connections: 16,
    });
    // random two least_conn → p2c_ewma (noted), weights kept
    assert.deepEqual(cfg.upstreams.pool2, { targets: ['http://app1.internal:9000', { url: 'http://app2.internal:9000', weight: 2 }], balancer: 'p2c_ewma' });
    for (const line of [15, 23]) assert.ok(report.notes.some((n) => n.line === line), `nginx.conf:${line} is noted`);
    assert.deepEqual(Object.keys(cfg.limit_req_zones), ['byauth']);
    assert.deepEqual(cfg.routes, [
      { name: 'root', prefix: '/', upstream: 'app', public: true, limit_req: [{ zone: 'byauth', burst: 5, delay: 2 }] },
      { name: 'ws', prefix: '/ws', upstream: 'pool2', public: true },
    ]);
    const byLine = new Map(report.untranslated.map((u) => [`${u.line} ${u.directive}`, u.reason]));
    const must: [string, RegExp][] = [
      ['8 map $http_upgrade $connection_upgrade', /variables/],
      ['17 server 10.0.0.3:8080 down', /not imported/],
      ['19 keepalive_timeout 60s', /./],
      ['28 limit_req_zone $request_uri zone=byuri:1m rate=1r/s', /client address .* header/],
      ['32 listen 8443 ssl', /TLS/],
      ['32 listen 8443 http2', /./],
      ['37 if ($host = www.example.com)', /if/],
      ['38 return 301 https://example.com$request_uri', /inside untranslated "if" at nginx\.conf:37/],
      ['40 rewrite ^/old/(.*)$ /new/$1 permanent', /rewrite/],
      ['42 location ~ \\.php$', /regex/],
      ['45 location ~* ^/static/', /regex/],
      ['48 location = /healthz', /exact/],
      ['51 location @fallback', /named/],
      ['55 zone byuri', /byuri .*not translated/],
      ['57 try_files $uri @fallback', /try_files/],
      ['61 proxy_pass http://pool2/v2/', /URI part/],
      ['70 server', /one listener/],
      ['73 return 301 https://$host$request_uri', /inside untranslated "server"/],
    ];
    for (const [key, re] of must) {
      assert.ok(byLine.has(key), `missing from the report: nginx.conf:${key}\n${places(report).join('\n')}`);
      assert.match(byLine.get(key)!, re, key);
    }
    for (const u of report.untranslated) assert.equal(u.file, 'nginx.conf');
    for (const line of [14, 15, 16, 23, 25]) assert.ok(!report.untranslated.some((u) => u.line === line), `nginx.conf:${line} is translated now`);
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

  it('exits 1 when nothing is routable, 2 on bad usage; --config/--check still work', async () => {
    const dir = mkdtempSync(join(out, 'empty-'));
    writeFileSync(join(dir, 'nginx.conf'), 'http { server { listen 80; location / { return 200; } } }\n');
    const run = await sluice(['import-nginx', join(dir, 'nginx.conf')]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /nginx\.conf:1: return 200/);
    assert.match(run.stderr, /nothing to route/);
    assert.equal((await sluice(['import-nginx'])).code, 2);
    assert.equal((await sluice(['import-nginx', 'a', 'b'])).code, 2);
    const check = await sluice(['--check', join(FIXTURES, 'nope.yaml')]);
    assert.equal(check.code, 1);
  });

  it('writes YAML to stdout without --out', async () => {
    const run = await sluice(['import-nginx', join(FIXTURES, 'api-edge', 'nginx.conf')]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal((parse(run.stdout) as { server: { port: number } }).server.port, 18080);
    assert.match(run.stderr, /directives translated, 11 untranslated/);
  });
});
