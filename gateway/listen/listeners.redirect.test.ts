import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { testConfig } from '../../test/harness/config.js';
import { startEchoBackend } from '../../test/harness/echo-backend.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { makeTestPki, type TestPki } from '../../test/harness/tls-pki.js';

// The nginx pair every TLS edge has: a plain server that sends everything to HTTPS
// (`return 301 https://$host$request_uri`), and the TLS server that serves. Here it is a
// virtual host that is the default on the plain listener, with one return route, beside
// the top-level routes that every listener has.

describe('listeners: HTTP to HTTPS redirect, end to end', () => {
  let pki: TestPki;
  let backend: Server;
  let gw: GatewayProcess;
  let ports: Record<string, number>;
  let agent: Agent;

  before(async () => {
    pki = await makeTestPki();
    const cert = await pki.issue('api', 'DNS:api.example.test');
    backend = await startEchoBackend('127.0.0.1', 0);
    gw = await spawnGateway({
      ...testConfig({
        upstreams: [`http://127.0.0.1:${(backend.address() as AddressInfo).port}`],
        routes: [
          { name: 'scheme', exact: '/scheme', return: { status: 200, body: '$scheme $server_port' } },
          { name: 'all', prefix: '/', upstream: 'main', public: true },
        ],
      }),
      listeners: [
        { name: 'http', host: '127.0.0.1', port: 0 },
        { name: 'https', host: '127.0.0.1', port: 0, tls: { certificates: [cert] } },
      ],
      virtual_hosts: [{
        name: 'to-https', listeners: ['http'], default_for: ['http'],
        routes: [{ name: 'redirect', prefix: '/', return: { status: 301, location: 'https://$host$request_uri' } }],
      }],
    });
    const listening = await gw.waitForLine((l) => l.msg === 'sluice listening');
    ports = Object.fromEntries((listening.listeners as { name: string; port: number }[]).map((l) => [l.name, l.port]));
    agent = new Agent({ connect: { ca: readFileSync(pki.ca, 'utf8'), servername: 'api.example.test' } });
  });

  after(async () => {
    await agent?.close();
    await gw?.stop();
    backend?.close();
    await pki?.remove();
  });

  it('the plain listener answers every path with a 301 to the same URI over https, and proxies nothing', async () => {
    for (const [i, target] of ['/v1/images?size=10&x=%2F', '/', '/scheme'].entries()) {
      const res = await request(`http://127.0.0.1:${ports.http}${target}`, { headers: { host: 'api.example.test', 'x-request-id': `redirect-${i}` } });
      await res.body.dump();
      assert.equal(res.statusCode, 301, target);
      assert.equal(res.headers.location, `https://api.example.test${target}`);
      const line = await gw.waitForLine((l) => l.msg === 'request' && l.request_id === `redirect-${i}`);
      assert.equal(line.route, 'redirect');
      assert.equal(line.listener, 'http');
      assert.equal(line.upstream, undefined, 'answered by the gateway itself');
    }
  });

  it('the TLS listener serves the routes, with $scheme https and X-Forwarded-Proto https', async () => {
    const res = await request(`https://127.0.0.1:${ports.https}/v1/images?size=10`, { dispatcher: agent, headers: { host: 'api.example.test' } });
    assert.equal(res.statusCode, 200);
    const echo = await res.body.json() as { url: string; headers: Record<string, string> };
    assert.equal(echo.url, '/v1/images?size=10');
    assert.equal(echo.headers['x-forwarded-proto'], 'https');
    const scheme = await request(`https://127.0.0.1:${ports.https}/scheme`, { dispatcher: agent, headers: { host: 'api.example.test' } });
    assert.equal(await scheme.body.text(), `https ${ports.https}`);
  });
});
