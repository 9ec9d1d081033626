// nginx's failure defaults, as `sluice import-nginx` configures an imported upstream:
// proxy_next_upstream error timeout (a connection failure goes to the next server, a 5xx
// answer is passed on) and max_fails=1 fail_timeout=10s counting errors only
// (outlier.count_5xx: false); against Sluice's own defaults, which retry 502/503 and
// count 5xx toward ejection.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { testConfig } from '../../test/harness/config.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { freePort } from '../../test/harness/ports.js';

interface Counting { readonly url: string; hits: number; close(): Promise<void> }

async function upstream(status: number): Promise<Counting> {
  const c = { url: '', hits: 0, close: async () => {} };
  const server = createServer((req, res) => {
    c.hits++;
    req.resume();
    req.once('end', () => { res.writeHead(status, { 'content-type': 'text/plain' }); res.end(String(status)); });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  c.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  c.close = () => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); });
  return c;
}

const NGINX = {
  balancer: 'round_robin',
  outlier: { consecutive_failures: 1, base_ejection_ms: 10000, max_ejection_ms: 10000, max_ejection_percent: 100, count_5xx: false },
  retry: { attempts: 1, statuses: [], min_per_second: 1000 },
};
const SLUICE = { balancer: 'round_robin', outlier: { consecutive_failures: 1, max_ejection_percent: 100 }, retry: { min_per_second: 1000 } };

function gateway(targets: string[], up: object): Promise<GatewayProcess> {
  return spawnGateway(testConfig({ upstreams: targets, upstream: up, routes: [{ name: 'all', prefix: '/', upstream: 'main', public: true }], log: { access: false } }));
}

async function statuses(gw: GatewayProcess, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = await request(`${gw.url}/x`);
    await r.body.dump();
    out.push(r.statusCode);
  }
  return out;
}

describe('upstream failure policy: nginx defaults (imported) against Sluice defaults', { timeout: 60_000 }, () => {
  const upstreams: Counting[] = [];
  const gateways: GatewayProcess[] = [];
  before(async () => { upstreams.push(await upstream(503), await upstream(200), await upstream(503), await upstream(200)); });
  after(async () => {
    await Promise.all(gateways.map((g) => g.stop()));
    await Promise.all(upstreams.map((u) => u.close()));
  });

  it('nginx: a 503 is passed on, not retried, and never ejects its server', async () => {
    const [bad, good] = upstreams as [Counting, Counting];
    const gw = await gateway([bad.url, good.url], NGINX);
    gateways.push(gw);
    const got = await statuses(gw, 8);
    assert.deepEqual([...got].sort(), [200, 200, 200, 200, 503, 503, 503, 503], 'round-robin, each answer as the server gave it');
    assert.deepEqual([bad.hits, good.hits], [4, 4], 'no retry, no ejection');
  });

  it('nginx: a refused connection goes to the next server, and takes its server out (max_fails=1)', async () => {
    const good = upstreams[1]!;
    const before = good.hits;
    const dead = `http://127.0.0.1:${await freePort()}`;
    const gw = await gateway([dead, good.url], NGINX);
    gateways.push(gw);
    assert.deepEqual(await statuses(gw, 6), [200, 200, 200, 200, 200, 200]);
    assert.equal(good.hits - before, 6);
  });

  it('sluice (--upstream-policy sluice): the 503 is retried elsewhere and its server ejected', async () => {
    const [, , bad, good] = upstreams as [Counting, Counting, Counting, Counting];
    const gw = await gateway([bad.url, good.url], SLUICE);
    gateways.push(gw);
    assert.deepEqual(await statuses(gw, 8), [200, 200, 200, 200, 200, 200, 200, 200]);
    assert.equal(bad.hits, 1, 'one 503, then out for the ejection time');
  });
});
