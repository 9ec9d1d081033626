import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { startBackend } from '../../test/harness/backend.js';
import { testConfig } from '../../test/harness/config.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { rawRequest } from '../../test/harness/raw-http.js';

// Requests Node's parser refuses never reach the stage chain; they must still be counted
// and logged, or an attack would be invisible in the very places operators look.
describe('http: requests refused by the parser are logged and counted', () => {
  let backend: Awaited<ReturnType<typeof startBackend>>;
  let gw: GatewayProcess;

  before(async () => {
    backend = await startBackend();
    gw = await spawnGateway(testConfig({ upstreams: [backend.url] }));
  });
  after(async () => { await gw?.stop(); await backend?.close(); });

  it('a smuggling attempt gets one access-log line and a 400 in sluice_requests_total', async () => {
    const r = await rawRequest(gw.port, 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
    assert.equal(r.status, 400);
    const id = r.headers['x-request-id'];
    assert.ok(id !== undefined && id !== '');
    const line = await gw.waitForLine((l) => l.msg === 'request' && l.request_id === id);
    assert.equal(line.status, 400);
    assert.equal(line.error, 'bad_request');
    assert.equal(line.rejected, 'parser');
    const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text();
    assert.match(metrics, /sluice_requests_total\{route="\(none\)",status="400",plan="\(none\)"\} 1\b/);
  });
});
