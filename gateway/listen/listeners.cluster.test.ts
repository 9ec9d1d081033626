import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { stringify } from 'yaml';
import { sha256, testConfig } from '../../test/harness/config.js';
import { startEchoBackend } from '../../test/harness/echo-backend.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { startLoad } from '../../test/harness/load.js';
import { startRedis, type RedisProcess } from '../../test/harness/redis.js';
import { makeTestPki, type TestPki } from '../../test/harness/tls-pki.js';
import { waitUntil } from '../../test/harness/test-backend.js';
import { EVENT_TIMEOUT_MS } from '../../test/harness/wait.js';

// Listeners in a cluster: every worker opens every listener (through the primary, which
// shares each socket), and a rolling reload applies what one process cannot: a renewed
// certificate with no failed request, and a listener added.

const KEY = 'listeners-cluster-key';

interface Bound { name: string; port: number; tls: boolean }

const servedFingerprint = (port: number): Promise<string | undefined> => new Promise((resolve) => {
  const s = connect({ host: '127.0.0.1', port, servername: 'api.example.test', rejectUnauthorized: false }, () => {
    const f = s.getPeerX509Certificate()?.fingerprint256;
    s.end();
    resolve(f);
  });
  s.on('error', () => resolve(undefined));
});

describe('listeners: cluster (--workers 2)', { timeout: 60_000 }, () => {
  let redis: RedisProcess;
  let pki: TestPki;
  let backend: Server;
  let gw: GatewayProcess;
  let cert: { cert: string; key: string };
  let config: Record<string, unknown>;

  before(async () => {
    [redis, pki] = await Promise.all([startRedis(), makeTestPki()]);
    cert = await pki.issue('api', 'DNS:api.example.test');
    backend = await startEchoBackend('127.0.0.1', 0);
    config = {
      ...testConfig({
        upstreams: [`http://127.0.0.1:${(backend.address() as AddressInfo).port}`],
        store: { kind: 'redis', url: redis.url, timeout_ms: 200 },
        keys: [{ digest: sha256(KEY), customer: 'c1', plan: 'test' }],
        log: { access: false },
      }),
      listeners: [
        { name: 'http', host: '127.0.0.1', port: 0 },
        { name: 'https', host: '127.0.0.1', port: 0, tls: { certificates: [cert] } },
      ],
    };
    gw = await spawnGateway(config, {}, ['--workers', '2']);
  });
  after(async () => {
    await gw?.stop();
    backend?.close();
    await Promise.all([redis?.stop(), pki?.remove()]);
  });

  const announced = (): Bound[] => gw.lines.find((l) => l.msg === 'sluice listening')!.listeners as Bound[];
  const workerLines = (): Record<string, unknown>[] => gw.lines.filter((l) => l.msg === 'worker listening');

  it('every worker opens every listener on the same shared ports, and both serve', async () => {
    const bound = announced();
    assert.deepEqual(bound.map((l) => [l.name, l.tls]), [['http', false], ['https', true]]);
    assert.notEqual(bound[0]!.port, bound[1]!.port);
    // Each worker writes its own line to the shared stdout; the primary's announcement can
    // reach the pipe before the second worker's line does.
    await waitUntil(() => workerLines().length >= 2, EVENT_TIMEOUT_MS, 'both workers\' "worker listening" lines');
    const workers = workerLines();
    assert.equal(workers.length, 2);
    assert.notEqual(workers[0]!.pid, workers[1]!.pid);
    for (const w of workers) assert.deepEqual(w.listeners, bound, 'a worker that bound other ports would not share the sockets');
    const plain = await request(`http://127.0.0.1:${bound[0]!.port}/x`, { headers: { 'x-api-key': KEY } });
    assert.equal(plain.statusCode, 200);
    assert.equal(((await plain.body.json()) as { headers: Record<string, string> }).headers['x-forwarded-proto'], 'http');
    const agent = new Agent({ connect: { ca: readFileSync(pki.ca, 'utf8'), servername: 'api.example.test' } });
    try {
      const tls = await request(`https://127.0.0.1:${bound[1]!.port}/x`, { dispatcher: agent, headers: { 'x-api-key': KEY } });
      assert.equal(tls.statusCode, 200);
      assert.equal(((await tls.body.json()) as { headers: Record<string, string> }).headers['x-forwarded-proto'], 'https');
    } finally {
      await agent.close();
    }
  });

  it('SIGHUP rolls the workers: a renewed certificate and an added listener, with no failed request meanwhile', async (t) => {
    const bound = announced();
    const before = new X509Certificate(readFileSync(cert.cert)).fingerprint256;
    assert.equal(await servedFingerprint(bound[1]!.port), before);
    const load = startLoad(`https://127.0.0.1:${bound[1]!.port}/load`, {
      concurrency: 4, headers: { 'x-api-key': KEY }, tls: { ca: readFileSync(pki.ca, 'utf8'), servername: 'api.example.test' },
    });
    try {
      while (load.done() < 50) await new Promise((r) => setTimeout(r, 20));
      await pki.issue('api', 'DNS:api.example.test');
      const renewed = new X509Certificate(readFileSync(cert.cert)).fingerprint256;
      const next = { ...config, listeners: [...(config.listeners as object[]), { name: 'extra', host: '127.0.0.1', port: 0 }] };
      writeFileSync(gw.file, stringify(next));
      const mark = gw.lines.length;
      gw.child.kill('SIGHUP');
      await gw.waitForLine((l) => gw.lines.indexOf(l) >= mark && l.msg === 'reload done', 30_000);
      const n = load.done();
      while (load.done() < n + 50) await new Promise((r) => setTimeout(r, 20));
      assert.equal(await servedFingerprint(bound[1]!.port), renewed);
      const fresh = workerLines().slice(2);
      assert.equal(fresh.length, 2, 'two new workers');
      for (const w of fresh) {
        const ls = w.listeners as Bound[];
        assert.deepEqual(ls.slice(0, 2), bound, 'the kept listeners keep their sockets');
        assert.equal(ls[2]!.name, 'extra');
      }
      const extra = (fresh[0]!.listeners as Bound[])[2]!.port;
      const r = await request(`http://127.0.0.1:${extra}/new`, { headers: { 'x-api-key': KEY } });
      assert.equal(r.statusCode, 200);
      await r.body.dump();
    } finally {
      const r = await load.stop();
      t.diagnostic(`cluster renewal under load: ${r.ok} ok, ${r.failed} failed`);
      assert.equal(r.failed, 0, r.failures.join(', '));
    }
  });
});
