import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { createConnection } from 'node:net';
import { connect, type ConnectionOptions } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { stringify } from 'yaml';
import { testConfig } from '../../test/harness/config.js';
import { startEchoBackend } from '../../test/harness/echo-backend.js';
import { CLI, spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { startLoad } from '../../test/harness/load.js';
import { metricValue, scrapeMetrics } from '../../test/harness/metrics.js';
import { pollUntil } from '../../test/harness/poll.js';
import { assertGatewayHealthy } from '../../test/harness/proc.js';
import { makeTestPki, type TestPki } from '../../test/harness/tls-pki.js';

const execFileP = promisify(execFile);

// TLS at the edge, with certificates the test makes with openssl: a real TLS client, the
// certificate SNI picks, the protocol floor, config errors that name their field, and a
// certificate renewal under load (SIGHUP) that no request notices.

interface Handshake {
  readonly fingerprint?: string;
  readonly protocol?: string | null;
  readonly cipher?: string;
  readonly error?: string;
}

/** One TLS handshake with the gateway: what it served, or how it refused. */
function handshake(port: number, opts: ConnectionOptions): Promise<Handshake> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts }, () => {
      const got = { fingerprint: s.getPeerX509Certificate()?.fingerprint256, protocol: s.getProtocol(), cipher: s.getCipher().name };
      s.end();
      resolve(got);
    });
    s.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
  });
}

const fingerprintOf = (file: string): string => new X509Certificate(readFileSync(file)).fingerprint256;

describe('listeners: TLS at the edge', () => {
  let pki: TestPki;
  let backend: Server;
  let api: { cert: string; key: string };
  let img: { cert: string; key: string };
  let gw: GatewayProcess;
  let ports: Record<string, number>;
  const tlsListener = (name: string, extra: object = {}) => ({
    name, host: '127.0.0.1', port: 0,
    tls: { certificates: [{ cert: api.cert, key: api.key }, { cert: img.cert, key: img.key }], ...extra },
  });
  let config: Record<string, unknown>;

  before(async () => {
    pki = await makeTestPki();
    [api, img] = await Promise.all([
      pki.issue('api', 'DNS:api.example.test,IP:127.0.0.1'),
      pki.issue('img', 'DNS:*.img.example.test'),
    ]);
    backend = await startEchoBackend('127.0.0.1', 0);
    config = {
      ...testConfig({ upstreams: [`http://127.0.0.1:${(backend.address() as AddressInfo).port}`], routes: [{ name: 'all', prefix: '/', upstream: 'main', public: true }] }),
      listeners: [
        { name: 'http', host: '127.0.0.1', port: 0 },
        tlsListener('https'),
        tlsListener('modern', { min_version: 'TLSv1.3' }),
      ],
    };
    gw = await spawnGateway(config);
    const listening = await gw.waitForLine((l) => l.msg === 'sluice listening');
    ports = Object.fromEntries((listening.listeners as { name: string; port: number }[]).map((l) => [l.name, l.port]));
  });

  after(async () => {
    await gw?.stop();
    backend?.close();
    await pki?.remove();
  });

  it('serves HTTPS to a client that trusts the CA, says so upstream, and names the listener in the access log', async () => {
    const agent = new Agent({ connect: { ca: readFileSync(pki.ca, 'utf8'), servername: 'api.example.test' } });
    try {
      const res = await request(`https://127.0.0.1:${ports.https}/tls?x=1`, { dispatcher: agent, headers: { 'x-request-id': 'tls-1' } });
      assert.equal(res.statusCode, 200);
      const echo = await res.body.json() as { url: string; headers: Record<string, string> };
      assert.equal(echo.url, '/tls?x=1');
      assert.equal(echo.headers['x-forwarded-proto'], 'https');
    } finally {
      await agent.close();
    }
    const plain = await request(`http://127.0.0.1:${ports.http}/plain`, { headers: { 'x-request-id': 'plain-1' } });
    assert.equal(((await plain.body.json()) as { headers: Record<string, string> }).headers['x-forwarded-proto'], 'http');
    const line = (id: string) => gw.waitForLine((l) => l.msg === 'request' && l.request_id === id);
    assert.equal((await line('tls-1')).listener, 'https');
    assert.equal((await line('plain-1')).listener, 'http');
  });

  it('a client that does not trust the CA refuses the connection', async () => {
    const agent = new Agent({ connect: { ca: readFileSync(pki.otherCa, 'utf8'), servername: 'api.example.test' } });
    try {
      await assert.rejects(request(`https://127.0.0.1:${ports.https}/`, { dispatcher: agent }), /certificate/i);
    } finally {
      await agent.close();
    }
  });

  it('picks the certificate by SNI: exact name, wildcard, and the first one for unknown or absent names', async () => {
    const apiPrint = fingerprintOf(api.cert);
    const imgPrint = fingerprintOf(img.cert);
    assert.notEqual(apiPrint, imgPrint);
    assert.equal((await handshake(ports.https!, { servername: 'api.example.test' })).fingerprint, apiPrint);
    assert.equal((await handshake(ports.https!, { servername: 'API.Example.Test' })).fingerprint, apiPrint);
    assert.equal((await handshake(ports.https!, { servername: 'cdn.img.example.test' })).fingerprint, imgPrint);
    // A wildcard covers one label only, as in RFC 6125.
    assert.equal((await handshake(ports.https!, { servername: 'a.b.img.example.test' })).fingerprint, apiPrint);
    assert.equal((await handshake(ports.https!, { servername: 'unknown.test' })).fingerprint, apiPrint);
    // Node sends no SNI to an IP address.
    assert.equal((await handshake(ports.https!, {})).fingerprint, apiPrint);
    // And the chosen certificate verifies for its name.
    const verified = await handshake(ports.https!, { servername: 'x.img.example.test', rejectUnauthorized: true, ca: readFileSync(pki.ca) });
    assert.equal(verified.fingerprint, imgPrint, JSON.stringify(verified));
  });

  it('refuses TLS 1.0 and 1.1 handshakes with a protocol_version alert; 1.2 gets a forward-secret AEAD cipher; TLS 1.3 is the default', async () => {
    // SECLEVEL=0 lets this client offer the old protocols at all: the refusal must be the server's.
    for (const v of ['TLSv1', 'TLSv1.1'] as const) {
      const h = await handshake(ports.https!, { minVersion: v, maxVersion: v, ciphers: 'DEFAULT@SECLEVEL=0', servername: 'api.example.test' });
      assert.equal(h.error, 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', `${v}: ${JSON.stringify(h)}`);
    }
    const v12 = await handshake(ports.https!, { maxVersion: 'TLSv1.2', servername: 'api.example.test' });
    assert.equal(v12.protocol, 'TLSv1.2');
    // The test PKI's keys are P-256 (test/harness/tls-pki.ts): ECDSA suites.
    assert.match(v12.cipher!, /^ECDHE-ECDSA-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/);
    // A TLS 1.2 client that offers only CBC suites finds nothing in common.
    const cbc = await handshake(ports.https!, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA', servername: 'api.example.test' });
    assert.ok(cbc.error !== undefined, JSON.stringify(cbc));
    assert.equal((await handshake(ports.https!, { servername: 'api.example.test' })).protocol, 'TLSv1.3');
    // min_version: TLSv1.3 refuses 1.2.
    assert.equal((await handshake(ports.modern!, { maxVersion: 'TLSv1.2', servername: 'api.example.test' })).error, 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION');
    assert.equal((await handshake(ports.modern!, { servername: 'api.example.test' })).protocol, 'TLSv1.3');
    // Refusals are counted by listener and reason.
    const m = await scrapeMetrics(gw.adminUrl);
    assert.ok(metricValue(m, 'sluice_tls_handshake_errors_total', { listener: 'https', reason: 'ERR_SSL_UNSUPPORTED_PROTOCOL' }) >= 2, m.split('\n').filter((l) => l.includes('tls_handshake')).join('\n'));
    assert.ok(metricValue(m, 'sluice_tls_handshake_errors_total', { listener: 'modern' }) >= 1);
    // And they are not requests: nothing was answered, nothing logged as one.
    assert.equal(metricValue(m, 'sluice_requests_total', { status: '400' }), 0);
    assert.deepEqual(gw.lines.filter((l) => l.msg === 'request' && l.rejected === 'parser'), []);
  });

  it('openssl s_client -tls1 is refused too', async (t) => {
    const r = await execFileP('openssl', ['s_client', '-connect', `127.0.0.1:${ports.https}`, '-tls1', '-cipher', 'DEFAULT@SECLEVEL=0', '-servername', 'api.example.test'],
      { timeout: 10_000, input: '' } as object).then(() => ({ code: 0, out: '' }), (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: `${e.stdout}${e.stderr}` }));
    if (/unknown option|no protocols available/i.test(r.out)) {
      t.diagnostic(`this openssl cannot offer TLS 1.0 at all (${r.out.split('\n').find((l) => /option|protocols/i.test(l))}); node's client covers it above`);
      return;
    }
    assert.notEqual(r.code, 0, r.out);
    assert.match(r.out, /alert protocol version|wrong version|unsupported protocol/i, r.out);
  });

  it('--check names the field of an unreadable, unparsable or mismatched certificate', async () => {
    const garbage = `${api.cert}.garbage`;
    writeFileSync(garbage, 'not a certificate\n');
    const bad = {
      ...config,
      listeners: [
        { name: 'a', host: '127.0.0.1', port: 0, tls: { certificates: [{ cert: '/nonexistent/sluice.pem', key: api.key }] } },
        { name: 'b', host: '127.0.0.1', port: 0, tls: { certificates: [{ cert: api.cert, key: img.key }] } },
        { name: 'c', host: '127.0.0.1', port: 0, tls: { certificates: [{ cert: garbage, key: api.key }], ciphers: 'NOT-A-CIPHER' } },
        { name: 'c', host: '127.0.0.1', port: 0, tls: { certificates: [{ cert: api.cert, key: api.key }, { cert: api.cert, key: api.key, hosts: ['API.example.test'] }] } },
      ],
    };
    const file = `${api.cert}.bad.yaml`;
    writeFileSync(file, stringify(bad));
    const r = await execFileP(process.execPath, [CLI, '--check', file]).then(() => ({ code: 0, stderr: '' }), (e: { code: number; stderr: string }) => e);
    assert.equal(r.code, 1);
    const lines = r.stderr.split('\n').map((l) => l.trim());
    const expect = [
      /^listeners\[0\]\.tls\.certificates\[0\]\.cert: cannot read \/nonexistent\/sluice\.pem \(ENOENT\)$/,
      /^listeners\[1\]\.tls\.certificates\[0\]\.key: .*img\.key is not the private key of the certificate in .*api\.crt$/,
      /^listeners\[2\]\.tls\.ciphers: OpenSSL refuses this cipher list/,
      /^listeners\[2\]\.tls\.certificates\[0\]\.cert: .*garbage is not a PEM certificate/,
      /^listeners\[3\]\.name: listener "c" is already defined$/,
      /^listeners\[3\]\.tls\.certificates\[1\]\.hosts: api\.example\.test is already served by certificates\[0\]$/,
    ];
    for (const re of expect) assert.ok(lines.some((l) => re.test(l)), `${re} in:\n${r.stderr}`);
    assert.equal(lines.filter((l) => l.startsWith('listeners')).length, expect.length, r.stderr);
  });

  it('a reload with an unreadable certificate is refused: the old certificate keeps serving', async () => {
    const before = (await handshake(ports.https!, { servername: 'api.example.test' })).fingerprint;
    const broken = structuredClone(config) as { listeners: { tls?: { certificates: { cert: string }[] } }[] };
    broken.listeners[1]!.tls!.certificates[0]!.cert = `${api.cert}.missing`;
    writeFileSync(gw.file, stringify(broken));
    const mark = gw.lines.length;
    gw.child.kill('SIGHUP');
    await gw.waitForLine((l) => gw.lines.indexOf(l) >= mark && l.msg === 'reload refused: the running config stays in force');
    const errors = gw.lines.slice(mark).filter((l) => l.msg === 'config error').map((l) => String(l.error));
    assert.deepEqual(errors.map((e) => e.split(':')[0]), ['listeners[1].tls.certificates[0].cert'], errors.join('\n'));
    assert.equal((await handshake(ports.https!, { servername: 'api.example.test' })).fingerprint, before);
    writeFileSync(gw.file, stringify(config));
  });

  it('a renewed certificate is served after SIGHUP, with no failed request on keep-alive or new connections meanwhile', async (t) => {
    const ca = readFileSync(pki.ca, 'utf8');
    const url = `https://127.0.0.1:${ports.https}/renew`;
    const kept = startLoad(url, { concurrency: 4, tls: { ca, servername: 'api.example.test' } });
    const fresh = startLoad(url, { concurrency: 2, fresh: true, tls: { ca, servername: 'api.example.test' } });
    const old = fingerprintOf(api.cert);
    try {
      // Some traffic before, the renewal (new key and certificate in the same files), some after.
      while (kept.done() < 50 || fresh.done() < 20) await new Promise((r) => setTimeout(r, 20));
      await pki.issue('api', 'DNS:api.example.test,IP:127.0.0.1');
      const renewed = fingerprintOf(api.cert);
      assert.notEqual(renewed, old);
      const mark = gw.lines.length;
      gw.child.kill('SIGHUP');
      await gw.waitForLine((l) => gw.lines.indexOf(l) >= mark && l.msg === 'reload done', 10_000);
      const [k, f] = [kept.done(), fresh.done()];
      while (kept.done() < k + 50 || fresh.done() < f + 20) await new Promise((r) => setTimeout(r, 20));
      assert.equal((await handshake(ports.https!, { servername: 'api.example.test' })).fingerprint, renewed);
      // A client without SNI gets the default certificate, which is the renewed one too.
      assert.equal((await handshake(ports.https!, {})).fingerprint, renewed);
    } finally {
      const [rk, rf] = await Promise.all([kept.stop(), fresh.stop()]);
      t.diagnostic(`renewal under load: keep-alive ${rk.ok} ok ${rk.failed} failed; new connections ${rf.ok} ok ${rf.failed} failed`);
      assert.equal(rk.failed + rf.failed, 0, [...rk.failures, ...rf.failures].join(', '));
    }
    assertGatewayHealthy(gw);
  });

  it('a client that opens a connection and never completes the handshake is cut after server.headers_timeout_ms', async () => {
    const short = await spawnGateway({ ...config, server: { host: '127.0.0.1', port: 0, headers_timeout_ms: 300 }, listeners: [tlsListener('https')] });
    try {
      const port = ((await short.waitForLine((l) => l.msg === 'sluice listening')).listeners as { port: number }[])[0]!.port;
      const s = createConnection({ host: '127.0.0.1', port });
      s.on('error', () => {});
      const closed = once(s, 'close');
      // The bound is the test's, generous on purpose: without the timeout Node would wait 120 s.
      const deadline = setTimeout(() => s.destroy(new Error('still open after 10 s')), 10_000);
      await closed;
      clearTimeout(deadline);
      assert.equal(s.errored?.message === 'still open after 10 s', false, 'the gateway closed it');
      const timedOut = await pollUntil(async () => {
        const m = await scrapeMetrics(short.adminUrl);
        return metricValue(m, 'sluice_tls_handshake_errors_total', { listener: 'https', reason: 'ERR_TLS_HANDSHAKE_TIMEOUT' }) >= 1 ? true : undefined;
      }, 5000);
      assert.equal(timedOut.value, true, 'counted as a handshake timeout');
    } finally {
      await short.stop();
    }
  });

  it('one process: a listener added on reload is reported as needing a restart, and the others keep serving', async () => {
    const next = { ...config, listeners: [...(config.listeners as object[]), { name: 'extra', host: '127.0.0.1', port: 0 }] };
    writeFileSync(gw.file, stringify(next));
    const mark = gw.lines.length;
    gw.child.kill('SIGHUP');
    const done = await gw.waitForLine((l) => gw.lines.indexOf(l) >= mark && String(l.msg).startsWith('reload done'));
    assert.deepEqual(done.needs_restart, ['listeners']);
    assert.equal((await handshake(ports.https!, { servername: 'api.example.test' })).protocol, 'TLSv1.3');
    const plain = await request(`http://127.0.0.1:${ports.http}/after`);
    assert.equal(plain.statusCode, 200);
    await plain.body.dump();
  });
});
