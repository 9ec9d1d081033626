import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sha256, testConfig } from '../../test/harness/config.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { RawClient } from '../../test/harness/raw-client.js';
import { readHead, startRawUpstream, type RawUpstream } from '../../test/harness/raw-upstream.js';

// A body too slow for server.min_body_rate whose upstream has already started its answer:
// the client has that answer's head, so the gateway cannot say 408. It cuts the
// connection, and its log says so rather than claiming a 408 it never sent (the access
// line keeps the upstream's status, with no error code of the gateway's).

describe('a slow body after the upstream answered', () => {
  let upstream: RawUpstream;
  let gw: GatewayProcess;

  before(async () => {
    // Answers the head at once and streams a body it never finishes, reading nothing more.
    upstream = await startRawUpstream((s) => {
      void readHead(s).then(() => s.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n'), () => {});
    });
    gw = await spawnGateway(testConfig({
      upstreams: [upstream.url],
      server: { min_body_rate: 500, body_rate_window_ms: 1000 },
      keys: [{ digest: sha256('k-slow'), customer: 'c-slow', plan: 'test' }],
    }));
  });
  after(async () => {
    await gw?.stop();
    await upstream?.close();
  });

  it('cuts the connection and logs that the upstream had answered, not a 408', async () => {
    const c = await RawClient.connect(gw.port);
    try {
      await c.write(`POST /up HTTP/1.1\r\nHost: x\r\nX-API-Key: k-slow\r\nX-Request-Id: slow-answered\r\nContent-Length: 100000\r\n\r\nx`);
      assert.ok(await c.waitFor((raw) => raw.includes('hello'), 10_000), `the upstream's answer did not come through: ${c.raw.slice(0, 200)}`);
      // Nothing more is sent: the body's rate is far under 500 bytes/s over the 1 s window.
      assert.ok(await c.waitClosed(10_000), 'the gateway left the connection open');
    } finally {
      c.destroy();
    }
    assert.match(c.raw, /^HTTP\/1\.1 200 /);
    assert.doesNotMatch(c.raw, /request_timeout/);
    const warn = await gw.waitForLine((l) => l.request_id === 'slow-answered' && String(l.msg).startsWith('request body too slow'));
    assert.equal(warn.msg, 'request body too slow: connection cut after the upstream answered');
    const access = await gw.waitForLine((l) => l.request_id === 'slow-answered' && l.msg === 'request');
    assert.equal(access.status, 200);
    assert.equal(access.error, undefined, 'the gateway sent no error of its own');
  });
});
