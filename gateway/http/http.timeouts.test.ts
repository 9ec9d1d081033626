import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startBackend } from '../../test/harness/backend.js';
import { sha256, testConfig } from '../../test/harness/config.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { assertGatewayHealthy } from '../../test/harness/proc.js';
import { RawClient } from '../../test/harness/raw-client.js';
import { parseRawResponse } from '../../test/harness/raw-http.js';

const REQUEST_TIMEOUT_MS = 800;
const KEEP_ALIVE_TIMEOUT_MS = 400;
// Node checks its timeouts on a timer, and other tests share this machine.
const SLACK_MS = 1500;

describe('http: server timeouts as configured', { timeout: 180_000 }, () => {
  let backend: Awaited<ReturnType<typeof startBackend>>;
  let gw: GatewayProcess;

  before(async () => {
    backend = await startBackend();
    // headers_timeout_ms is left at its 10 s default, longer than the request timeout:
    // Node refuses such a server outright, the gateway must start anyway.
    gw = await spawnGateway(testConfig({
      upstreams: [backend.url],
      keys: [{ digest: sha256('k-timeouts'), customer: 'acme', plan: 'test' }],
      server: { request_timeout_ms: REQUEST_TIMEOUT_MS, keep_alive_timeout_ms: KEEP_ALIVE_TIMEOUT_MS },
    }));
  });
  after(async () => { await gw?.stop(); await backend?.close(); });

  it('ends an unfinished request head at request_timeout_ms when that is the shorter timeout', async () => {
    const c = await RawClient.connect(gw.port);
    try {
      await c.write('GET /v1/a HTTP/1.1\r\nHost: x\r\n');
      for (let i = 0; i < 50 && !c.closed; i++) {
        await c.write(`X-Trickle-${i}: y\r\n`);
        await c.waitClosed(100);
      }
      assert.ok(c.closed, 'the head was allowed to trickle for 5 s');
      assert.ok(c.closedAfterMs! >= REQUEST_TIMEOUT_MS - 50, `closed after ${c.closedAfterMs!.toFixed(0)} ms`);
      assert.ok(c.closedAfterMs! < REQUEST_TIMEOUT_MS + SLACK_MS, `closed only after ${c.closedAfterMs!.toFixed(0)} ms`);
    } finally {
      c.destroy();
    }
    const r = parseRawResponse(c.raw, 0);
    assert.equal(r.status, 408);
    assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, 'request_timeout');
  });

  it('closes an idle keep-alive connection after keep_alive_timeout_ms', async () => {
    const c = await RawClient.connect(gw.port);
    try {
      await c.write('GET /v1/a HTTP/1.1\r\nHost: x\r\nX-API-Key: k-timeouts\r\n\r\n');
      assert.ok(await c.waitFor((raw) => raw.includes('"received_bytes"'), 5000), 'no answer');
      const answeredAt = performance.now() - c.startedAt;
      assert.ok(await c.waitClosed(KEEP_ALIVE_TIMEOUT_MS + SLACK_MS), 'idle connection kept open');
      const idle = c.closedAfterMs! - answeredAt;
      assert.ok(idle >= KEEP_ALIVE_TIMEOUT_MS - 50, `closed after ${idle.toFixed(0)} ms idle`);
      assert.match(c.raw, /^HTTP\/1\.1 200 /);
      assert.equal((c.raw.match(/HTTP\/1\.1 /g) ?? []).length, 1, 'an idle connection is closed, not answered 408');
    } finally {
      c.destroy();
    }
    assertGatewayHealthy(gw);
  });
});
