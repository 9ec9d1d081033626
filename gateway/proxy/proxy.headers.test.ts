import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { startBackend } from '../../test/harness/backend.js';
import { sha256, testConfig } from '../../test/harness/config.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { rawRequest } from '../../test/harness/raw-http.js';

describe('proxy: headers to the upstream and back', () => {
  let backend: Awaited<ReturnType<typeof startBackend>>;
  let gw: GatewayProcess;

  before(async () => {
    backend = await startBackend();
    gw = await spawnGateway(testConfig({
      upstreams: [backend.url],
      keys: [{ digest: sha256('k-headers'), customer: 'acme', plan: 'test' }],
    }));
  });
  after(async () => { await gw.stop(); await backend.close(); });

  const echo = async (headers: Record<string, string>) => {
    const res = await request(`${gw.url}/v1/echo?x=1`, { headers: { 'x-api-key': 'k-headers', ...headers } });
    assert.equal(res.statusCode, 200);
    return { res, body: await res.body.json() as { headers: Record<string, string>; url: string } };
  };

  it('sets identity and forwarding headers, and removes what the client may not set', async () => {
    const { res, body } = await echo({
      'x-sluice-customer': 'someone-else', 'x-sluice-plan': 'enterprise', 'x-sluice-anything': '1',
      'x-forwarded-for': '6.6.6.6', 'x-kept': 'yes',
      'x-request-id': 'client-id-123',
    });
    const h = body.headers;
    assert.equal(h['x-sluice-customer'], 'acme');
    assert.equal(h['x-sluice-plan'], 'test');
    assert.equal(h['x-sluice-anything'], undefined);
    assert.equal(h['x-forwarded-for'], '127.0.0.1', 'client-sent X-Forwarded-For is not trusted by default');
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.equal(h['x-forwarded-host'], `127.0.0.1:${gw.port}`);
    assert.equal(h['x-api-key'], undefined, 'the credential stays at the edge');
    assert.equal(h['x-kept'], 'yes');
    assert.equal(h['x-request-id'], 'client-id-123');
    assert.equal(res.headers['x-request-id'], 'client-id-123');
    assert.equal(body.url, '/v1/echo?x=1');
  });

  it('drops headers named in Connection (hop-by-hop by declaration)', async () => {
    const r = await rawRequest(gw.port, 'GET /v1/echo HTTP/1.1\r\nHost: x\r\nX-API-Key: k-headers\r\n'
      + 'Connection: close, X-Secret-Hop\r\nX-Secret-Hop: drop me\r\nTE: trailers\r\nUpgrade: websocket\r\n\r\n');
    assert.equal(r.status, 200);
    const h = (JSON.parse(r.body) as { headers: Record<string, string> }).headers;
    assert.equal(h['x-secret-hop'], undefined);
    assert.equal(h['te'], undefined);
    assert.equal(h['upgrade'], undefined);
  });

  it('replaces a forged or oversized X-Request-Id with a generated one', async () => {
    for (const bad of ['a'.repeat(200), 'id with spaces', '<script>', 'x\u00e9']) {
      const { res, body } = await echo({ 'x-request-id': bad });
      const id = res.headers['x-request-id'] as string;
      assert.notEqual(id, bad);
      assert.match(id, /^[0-9a-f-]{36}$/);
      assert.equal(body.headers['x-request-id'], id);
    }
  });
});
