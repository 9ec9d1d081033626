import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { spawnGateway, type GatewayProcess } from '../harness/gateway.js';
import { freePort } from '../harness/ports.js';

// `npm start` runs exactly this config; only the ports move, so the test can run beside others.
const CONFIG = readFileSync(fileURLToPath(new URL('../../../config/sluice.yaml', import.meta.url)), 'utf8');

describe('the default stack (config/sluice.yaml): memory store, two spawned backends, demo keys', () => {
  let gw: GatewayProcess;
  let backendPorts: number[];

  before(async () => {
    backendPorts = [await freePort(), await freePort()];
    gw = await spawnGateway(CONFIG, {
      SLUICE_PORT: '0', SLUICE_ADMIN_PORT: '0',
      SLUICE_BACKEND_PORT_1: String(backendPorts[0]), SLUICE_BACKEND_PORT_2: String(backendPorts[1]),
    });
    // The backends start beside the gateway; wait until both answer through it.
    const seen = new Set<string>();
    const deadline = Date.now() + 10_000;
    while (seen.size < 2 && Date.now() < deadline) {
      const res = await request(`${gw.url}/v1/hello`, { headers: { 'x-api-key': 'demo-pro' } });
      if (res.statusCode === 200) seen.add(((await res.body.json()) as { backend: string }).backend);
      else await res.body.dump();
    }
    assert.equal(seen.size, 2, 'both spawned backends answer through the gateway');
  });
  after(async () => { await gw?.stop('SIGINT'); });

  it('demo-pro reaches a backend, with the identity headers and RateLimit headers', async () => {
    const res = await request(`${gw.url}/v1/hello`, { headers: { 'x-api-key': 'demo-pro' } });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['ratelimit-policy']), /^"pro";q=200;w=2$/);
    assert.match(String(res.headers['ratelimit']), /^"pro";r=\d+;t=\d+$/);
    const body = await res.body.json() as { headers: Record<string, string> };
    assert.equal(body.headers['x-sluice-customer'], 'demo-pro');
    assert.equal(body.headers['x-sluice-plan'], 'pro');
  });

  it('no key gets 401 JSON', async () => {
    const res = await request(`${gw.url}/v1/hello`);
    assert.equal(res.statusCode, 401);
    const body = await res.body.json() as { error: { code: string; request_id: string } };
    assert.equal(body.error.code, 'unauthorized');
    assert.equal(body.error.request_id, res.headers['x-request-id']);
  });

  it('hammering demo-free gets 429 with Retry-After and RateLimit headers after its burst of 10', async () => {
    const statuses: number[] = [];
    let first429: Awaited<ReturnType<typeof request>> | undefined;
    for (let i = 0; i < 15; i++) {
      const res = await request(`${gw.url}/v1/hello`, { headers: { 'x-api-key': 'demo-free' } });
      statuses.push(res.statusCode);
      if (res.statusCode === 429 && first429 === undefined) { first429 = res; continue; }
      await res.body.dump();
    }
    // Sequential requests take well under 200 ms, so at 5/s at most one token refills.
    const admitted = statuses.filter((s) => s === 200).length;
    assert.ok(admitted >= 10 && admitted <= 11, `admitted ${admitted}`);
    assert.ok(first429 !== undefined);
    assert.ok(Number(first429.headers['retry-after']) >= 1);
    assert.equal(first429.headers['ratelimit-policy'], '"free";q=10;w=2, "free-day";q=1000;w=86400');
    assert.match(String(first429.headers['ratelimit']), /^"free";r=0;t=\d+, "free-day";r=\d+;t=\d+$/);
    const body = await first429.body.json() as { error: { code: string } };
    assert.equal(body.error.code, 'rate_limited');
  });

  it('/metrics and the access log show the traffic', async () => {
    const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text();
    assert.match(metrics, /sluice_requests_total\{route="api",status="429",plan="free"\} [1-9]/);
    assert.match(metrics, /sluice_limit_decisions_total\{result="rate_limited"\} [1-9]/);
    const line = await gw.waitForLine((l) => l.msg === 'request' && l.status === 429);
    assert.equal(line.customer, 'demo-free');
    assert.equal(line.limit, 'rate_limited');
  });
});
