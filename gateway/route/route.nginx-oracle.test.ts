import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'undici';
import { testConfig } from '../../test/harness/config.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { nginxMain, startNginx, type NginxProcess } from '../../test/harness/nginx.js';
import { hostsFor, nginxServers, pathsFor, sluiceVirtualHosts, type OServer } from '../../test/harness/route-oracle.js';
import { checkRequestTarget } from '../http/request-target.js';

// The oracle: a real nginx and Sluice, on one scenario rendered as an nginx config and as
// Sluice routes, with one echo upstream that reports the route (X-Route), the path and
// the Host it received. Both get the same requests, generated from the scenario (every
// location's path, samples of every regex, the encoding and traversal tricks on all of
// them, Hosts from every server name), and must agree on the route chosen, the status,
// the path forwarded, the Host and the Location, except where docs/routes.md says Sluice
// differs on purpose:
//  - an encoded slash (%2F) is 400 in Sluice; nginx decodes it;
//  - a path with dot segments or repeated slashes is forwarded resolved, escapes kept,
//    where nginx forwards it raw (when it does not rewrite);
//  - a Location nginx makes absolute with its own address is relative in Sluice.

const SCENARIO: readonly OServer[] = [
  {
    name: 'api', names: ['api.example.com', '*.api.example.com'], isDefault: true,
    locations: [
      { name: 'home', match: { exact: '/' }, action: { return: 200 } },
      { name: 'healthz', match: { exact: '/healthz' }, action: { return: 204 } },
      { name: 'root', match: { prefix: '/' }, action: { proxy: true } },
      {
        name: 'api', match: { prefix: '/api/' }, action: { proxy: true },
        nested: [
          { name: 'api-v1', match: { prefix: '/api/v1/' }, action: { proxy: true } },
          { name: 'api-php', match: { regex: '\\.php$' }, action: { deny: true } },
          { name: 'api-status', match: { exact: '/api/status' }, action: { return: 200 } },
        ],
      },
      {
        name: 'static', match: { prefix: '/static/', priority: true }, action: { proxy: true },
        nested: [{ name: 'static-map', match: { regex: '\\.map$', ci: true }, action: { return: 404 } }],
      },
      { name: 'images', match: { prefix: '/images/' }, action: { proxy: true } },
      { name: 'dotfiles', match: { regex: '/\\.' }, action: { deny: true } },
      { name: 'img-ext', match: { regex: '\\.(gif|jpg|jpeg|png)$', ci: true }, action: { proxy: true } },
      { name: 'avatar', match: { regex: '^/users/(\\d+)/avatar$' }, action: { proxy: true } },
      { name: 'env-files', match: { regex: '\\.(env|bak)$', ci: true }, action: { return: 403 } },
      { name: 'v1', match: { prefix: '/v1/' }, action: { proxy: true, uri: '/' } },
      { name: 'legacy', match: { prefix: '/legacy' }, action: { proxy: true, uri: '/new' } },
      { name: 'old', match: { prefix: '/old/' }, action: { return: 301, location: '/new$request_uri' } },
      { name: 'admin', match: { prefix: '/admin', priority: true }, action: { deny: true } },
    ],
  },
  {
    name: 'www', names: ['www.example.com', 'example.com', 'mail.*', '~^img\\d+\\.example\\.com$'],
    locations: [
      { name: 'www-root', match: { prefix: '/' }, action: { proxy: true } },
      { name: 'www-php', match: { regex: '\\.php$' }, action: { return: 403 } },
      { name: 'blog', match: { prefix: '/blog/' }, action: { proxy: true, uri: '/wp/' } },
    ],
  },
  {
    name: 'other', names: ['.other.test'],
    locations: [
      { name: 'other-home', match: { exact: '/' }, action: { return: 200 } },
      { name: 'other-x', match: { prefix: '/x/' }, action: { proxy: true } },
    ],
  },
];

interface Outcome {
  readonly status: number;
  readonly location: string | undefined;
  readonly echo: { url: string; host: string; route: string } | undefined;
}

describe('routes: side by side with a real nginx', { timeout: 240_000 }, () => {
  let echo: Server;
  let nginx: NginxProcess;
  let gw: GatewayProcess;
  let toNginx: Pool;
  let toSluice: Pool;

  before(async () => {
    echo = createServer((req, res) => {
      const body = JSON.stringify({ url: req.url, host: req.headers.host, route: req.headers['x-route'] });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const origin = `http://127.0.0.1:${(echo.address() as AddressInfo).port}`;
    nginx = await startNginx({ template: nginxMain(nginxServers(SCENARIO, origin)) });
    const cfg = testConfig({ upstreams: [origin], log: { access: false } });
    cfg.routes = [];
    cfg.virtual_hosts = sluiceVirtualHosts(SCENARIO, 'main');
    gw = await spawnGateway(cfg);
    toNginx = new Pool(nginx.url, { connections: 4 });
    toSluice = new Pool(gw.url, { connections: 4 });
  });
  after(async () => {
    await toNginx?.close();
    await toSluice?.close();
    await gw?.stop();
    await nginx?.stop();
    echo?.closeAllConnections();
    echo?.close();
  });

  const ask = async (pool: Pool, path: string, host: string): Promise<Outcome> => {
    const r = await pool.request({ path, method: 'GET', headers: { host } });
    const text = await r.body.text();
    const isEcho = r.statusCode === 200 && r.headers['content-type'] === 'application/json' && text.includes('"route"');
    return {
      status: r.statusCode,
      location: typeof r.headers.location === 'string' ? r.headers.location : undefined,
      echo: isEcho ? JSON.parse(text) as Outcome['echo'] : undefined,
    };
  };

  it('chooses the same route, status, forwarded path, Host and Location for every generated request', async () => {
    const requests: { path: string; host: string }[] = [];
    const hosts = hostsFor(SCENARIO, nginx.port);
    for (const s of SCENARIO) {
      const host = hosts.find((h) => h.server === s.name)!.host;
      for (const path of pathsFor(s)) requests.push({ path, host });
    }
    // Every Host form against a few paths, so each virtual host is reached through each of its names.
    for (const { host } of hosts) for (const path of ['/', '/x/y', '/blog/p', '/a.php']) requests.push({ path, host });

    const mismatches: string[] = [];
    const chosen = new Map<string, number>();
    const kinds = new Map<string, number>();
    const count = (m: Map<string, number>, k: string): void => { m.set(k, (m.get(k) ?? 0) + 1); };
    let next = 0;
    const work = async (): Promise<void> => {
      for (let i = next++; i < requests.length; i = next++) {
        const { path, host } = requests[i]!;
        const hostForSluice = host.replace(`:${nginx.port}`, `:${gw.port}`);
        const [n, s] = await Promise.all([ask(toNginx, path, host), ask(toSluice, path, hostForSluice)]);
        const at = `${host} ${path}`;
        const rawPath = path.split('?')[0]!;
        if (/%2f/i.test(rawPath) && n.status !== 400) {
          count(kinds, 'encoded slash: nginx decodes, Sluice 400');
          if (s.status !== 400) mismatches.push(`${at}: an encoded slash must be 400 in Sluice, got ${s.status}`);
          continue;
        }
        count(kinds, `status ${n.status}`);
        if (n.echo !== undefined) count(chosen, n.echo.route);
        if (s.status !== n.status) {
          mismatches.push(`${at}: nginx ${n.status}${n.echo ? ` (${n.echo.route})` : ''}, Sluice ${s.status}${s.echo ? ` (${s.echo.route})` : ''}`);
          continue;
        }
        if (n.echo !== undefined) {
          if (s.echo === undefined) { mismatches.push(`${at}: nginx proxied, Sluice did not`); continue; }
          if (s.echo.route !== n.echo.route) mismatches.push(`${at}: nginx chose ${n.echo.route}, Sluice ${s.echo.route}`);
          if (s.echo.host !== n.echo.host) mismatches.push(`${at}: Host upstream: nginx ${n.echo.host}, Sluice ${s.echo.host}`);
          const target = checkRequestTarget(path);
          // nginx forwards the raw path when it does not rewrite; Sluice resolves its dot segments and slashes.
          const expected = n.echo.url === path && target.ok ? target.forward : n.echo.url;
          if (n.echo.url === path && target.ok && target.forward !== path) count(kinds, 'forwarded resolved where nginx forwards raw');
          if (s.echo.url !== expected) mismatches.push(`${at}: forwarded: nginx ${n.echo.url}, Sluice ${s.echo.url}, expected ${expected}`);
        }
        const nLoc = n.location?.replace(/^http:\/\/[^/]+/, '');
        if (nLoc !== s.location) mismatches.push(`${at}: Location: nginx ${n.location}, Sluice ${s.location}`);
      }
    };
    await Promise.all(Array.from({ length: 4 }, work));

    const proxied = SCENARIO.flatMap((s) => every(s.locations)).filter((l) => !('return' in l.action) && !('deny' in l.action)).map((l) => l.name);
    const never = proxied.filter((name) => !chosen.has(name));
    assert.deepEqual(never, [], `the generated requests never reached: ${never.join(', ')}`);
    assert.ok(requests.length > 500, `${requests.length} requests`);
    assert.deepEqual(mismatches.slice(0, 30), [], `${mismatches.length} of ${requests.length} outcomes differ`);
    // For the record in the test output: how many requests, and which classes of outcome.
    process.stdout.write(`# oracle: ${requests.length} requests; ${JSON.stringify(Object.fromEntries(kinds))}\n`);
  });
});

function every(locs: OServer['locations']): OServer['locations'][number][] {
  return locs.flatMap((l) => [l, ...every(l.nested ?? [])]);
}
