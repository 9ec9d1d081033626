import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { LINGER_MS } from '../../common/linger.js';
import { formBody } from '../../test/harness/multipart.js';
import { RawClient } from '../../test/harness/raw-client.js';
import { parseRawResponse } from '../../test/harness/raw-http.js';
import { parseFetchRequest, parseOptionsHeader } from '../image/options.js';
import { DEFAULT_LIMITS, ImageError, type ProcessResult } from '../image/types.js';
import type { ServiceDeps } from './context.js';
import { createImageService, type ImageService } from './server.js';

// The HTTP layer with stand-ins for processing, so admission, errors and headers are
// tested deterministically (the real pipeline is in service.e2e.test.ts).

const WEBP = Buffer.concat([Buffer.from('RIFF\x10\x00\x00\x00WEBPVP8 ', 'latin1'), Buffer.alloc(8)]);

function fakeResult(input: Buffer): ProcessResult {
  return {
    data: WEBP, contentType: 'image/webp',
    input: { format: 'jpeg', width: 100, height: 50, bytes: input.length },
    output: { format: 'webp', width: 10, height: 5, bytes: WEBP.length },
  };
}

/** Writes `head` on a raw socket and resolves with what the server sent until it closed (or 2 s). */
function rawExchange(base: string, head: string): Promise<string> {
  const { port } = new URL(base);
  return new Promise((resolve, reject) => {
    const sock = connect(Number(port), '127.0.0.1', () => sock.write(head));
    let got = '';
    const timer = setTimeout(() => { sock.destroy(); resolve(got); }, 2000);
    sock.on('data', (d: Buffer) => { got += d.toString('latin1'); });
    sock.on('close', () => { clearTimeout(timer); resolve(got); });
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

interface Gate { promise: Promise<void>; open(): void }
function gate(): Gate {
  let open!: () => void;
  const promise = new Promise<void>((r) => { open = r; });
  return { promise, open };
}

describe('image service HTTP layer (injected processor)', () => {
  let svc: ImageService;
  let base: string;
  let hold: Gate | undefined;
  let started = 0;
  const sent: Array<{ customer: string; url: string; payload: Record<string, unknown>; delayMs: number | undefined }> = [];
  let sentSignal: Gate = gate();

  before(async () => {
    const deps: ServiceDeps = {
      process: async (input, opts) => {
        started++;
        if (hold) await hold.promise;
        if (input.toString('latin1').startsWith('GARBAGE')) throw new ImageError(415, 'unsupported_media_type', 'not an image');
        if (input.toString('latin1').startsWith('EXPLODE')) throw new Error('vips: something internal');
        void opts;
        return fakeResult(input);
      },
      detect: undefined,
      fetch: async () => { throw new ImageError(422, 'forbidden_destination', 'no'); },
      parseFetchRequest,
      parseOptionsHeader,
      webhooks: { send: (customer, url, payload, delayMs) => { sent.push({ customer, url, payload: payload as Record<string, unknown>, delayMs }); sentSignal.open(); }, close: () => {} },
    };
    svc = await createImageService(deps, {
      concurrency: 1, queue: 1, retryAfterSeconds: 3,
      limits: { ...DEFAULT_LIMITS, maxInputBytes: 10_000 },
      resultsDir: undefined, resultTtlSeconds: 60,
    });
    base = `http://127.0.0.1:${await svc.listen(0, '127.0.0.1')}`;
  });
  after(async () => { hold?.open(); await svc.close(); });

  it('answers the JSON result with the contract shape and a working result URL', async () => {
    const res = await request(`${base}/v1/images`, { method: 'POST', body: Buffer.alloc(1000, 1), headers: { 'x-request-id': 'abc-123' } });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['x-request-id'], 'abc-123');
    assert.match(String(res.headers['x-backend-load']), /^inflight=\d+; queued=\d+; capacity=2$/);
    const body = await res.body.json() as { id: string; output: { url: string }; savings: { bytes: number; percent: number } };
    assert.match(body.id, /^[A-Za-z0-9_-]{22}$/);
    assert.equal(body.output.url, `/v1/results/${body.id}`);
    assert.deepEqual(body.savings, { bytes: 1000 - WEBP.length, percent: Math.round((1000 - WEBP.length) * 1000 / 1000) / 10 });
    const got = await request(`${base}${body.output.url}`);
    assert.equal(got.statusCode, 200);
    assert.equal(got.headers['content-type'], 'image/webp');
    assert.equal(got.headers['x-content-type-options'], 'nosniff');
    assert.match(String(got.headers['cache-control']), /^private, max-age=(59|60)$/);
    assert.deepEqual(Buffer.from(await got.body.arrayBuffer()), WEBP);
  });

  it('with concurrency 1 and queue 1, a third concurrent request gets 503 overloaded with Retry-After, unread', async () => {
    hold = gate();
    const before = started;
    const a = request(`${base}/v1/images`, { method: 'POST', body: Buffer.alloc(100, 1) });
    // Wait until the first job holds the only slot, so the order is deterministic.
    for (let i = 0; i < 200 && started === before; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(started, before + 1, 'first job started');
    const b = request(`${base}/v1/images`, { method: 'POST', body: Buffer.alloc(100, 1) });
    for (let i = 0; i < 200 && svc.pool.load.queued === 0; i++) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(svc.pool.load, { inflight: 1, queued: 1, capacity: 2 });
    // The third one declares a large body and sends only the first chunk: the answer
    // must come without the server waiting for (or reading) the rest.
    const rest = gate();
    async function* slowBody(): AsyncGenerator<Buffer> { yield Buffer.alloc(1000, 1); await rest.promise; yield Buffer.alloc(8000, 1); }
    const c = await request(`${base}/v1/images`, { method: 'POST', body: Readable.from(slowBody()), headers: { 'content-length': '9000' } });
    assert.equal(c.statusCode, 503);
    assert.equal(c.headers['retry-after'], '3');
    assert.equal(c.headers['x-backend-load'], 'inflight=1; queued=1; capacity=2');
    const err = await c.body.json() as { error: { code: string; request_id: string } };
    assert.equal(err.error.code, 'overloaded');
    assert.equal(err.error.request_id, c.headers['x-request-id']);
    // Expect: 100-continue while full: the refusal comes instead of the invitation to send.
    const expectAnswer = await rawExchange(base, 'POST /v1/images HTTP/1.1\r\nhost: x\r\ncontent-length: 5000\r\nexpect: 100-continue\r\n\r\n');
    assert.match(expectAnswer, /^HTTP\/1\.1 503 /);
    rest.open();
    hold.open();
    hold = undefined;
    const [ra, rb] = await Promise.all([a, b]);
    assert.equal(ra.statusCode, 200);
    assert.equal(rb.statusCode, 200);
    await ra.body.dump(); await rb.body.dump();
    assert.deepEqual(svc.pool.load, { inflight: 0, queued: 0, capacity: 2 });
    const metrics = await (await request(`${base}/metrics`)).body.text();
    assert.match(metrics, /sluice_backend_overloaded_total [1-9]/);
    assert.match(metrics, /sluice_backend_requests_total\{endpoint="images",status="503"\} [1-9]/);
  });

  it('Expect: 100-continue is answered with 100 only when the request is admitted', async () => {
    const { port } = new URL(base);
    const answer = await new Promise<string>((resolve, reject) => {
      const sock = connect(Number(port), '127.0.0.1', () => sock.write('POST /v1/images HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n'));
      let got = '';
      sock.on('data', (d: Buffer) => {
        got += d.toString('latin1');
        if (got.startsWith('HTTP/1.1 100') && got.includes('\r\n\r\n') && !got.includes('200')) sock.write('abcd');
      });
      sock.on('close', () => resolve(got));
      sock.on('error', reject);
    });
    assert.match(answer, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
  });

  it('a declared body over the limit gets 413 JSON before it is read; an undeclared one is cut off', async () => {
    const res = await request(`${base}/v1/images`, { method: 'POST', body: Buffer.alloc(20_000, 1) });
    assert.equal(res.statusCode, 413);
    assert.equal((await res.body.json() as { error: { code: string } }).error.code, 'payload_too_large');
    async function* chunked(): AsyncGenerator<Buffer> { for (let i = 0; i < 5; i++) yield Buffer.alloc(4000, 1); }
    const res2 = await request(`${base}/v1/images`, { method: 'POST', body: Readable.from(chunked()) });
    assert.equal(res2.statusCode, 413);
    assert.equal((await res2.body.json() as { error: { code: string } }).error.code, 'payload_too_large');
    assert.deepEqual(svc.pool.load, { inflight: 0, queued: 0, capacity: 2 });
  });

  it('bad options get 400 naming the first bad field and listing every problem, from the header and from the multipart field', async () => {
    const res = await request(`${base}/v1/images`, { method: 'POST', body: Buffer.alloc(10, 1), headers: { 'x-options': '{"resize":{"width":-3},"quality":500}' } });
    assert.equal(res.statusCode, 400);
    const body = await res.body.json() as { error: { code: string; message: string; field: string } };
    assert.equal(body.error.code, 'bad_request');
    assert.equal(body.error.field, 'resize.width');
    assert.equal(body.error.message, 'resize.width: must be >= 1, got -3; quality: must be <= 100, got 500');
    const form = new FormData();
    form.append('file', new Blob([Buffer.alloc(10, 1)]), 'x.jpg');
    form.append('options', '{"format":"bmp"}');
    const res2 = await request(`${base}/v1/images`, { method: 'POST', ...await formBody(form) });
    assert.equal(res2.statusCode, 400);
    assert.equal((await res2.body.json() as { error: { field: string } }).error.field, 'format');
  });

  it('an answer given before the body is read goes out whole: the rest is drained, not reset under it, then the connection ends', async () => {
    // A proxy in front is still sending the body when the 400 comes: a close with unread
    // bytes would reset the connection and could take the answer with it (the gateway
    // then says 502 for what was the client's mistake).
    const { port } = new URL(base);
    const c = await RawClient.connect(Number(port), { allowHalfOpen: true });
    const total = 4 * 1024 * 1024;
    try {
      await c.write(`POST /v1/images HTTP/1.1\r\nHost: x\r\nX-Options: {"resize":{"width":-3}}\r\nContent-Length: ${total}\r\n\r\n`);
      assert.ok(await c.waitFor((raw) => raw.endsWith('}'), 5000), `no answer to the headers alone: ${c.raw.slice(0, 200)}`);
      // Then the body goes on, as from a proxy that has not looked at the answer yet
      // (a quarter of it: nothing sent may read as a next request).
      const frame = Buffer.alloc(64 * 1024, 1);
      for (let sent = 0; sent < total / 4 && await c.write(frame); sent += frame.length);
      assert.equal(c.error, undefined, `the connection was reset while the client was still sending: ${c.raw.slice(0, 300)}`);
      assert.ok(await c.waitEnded(LINGER_MS + 3000), 'the backend left the connection open');
    } finally {
      c.destroy();
    }
    const r = parseRawResponse(c.raw, 0);
    assert.equal(r.status, 400, c.raw.slice(0, 200));
    assert.match(c.raw.split('\r\n\r\n', 1)[0]!, /\r\nconnection: close\r\n/i, 'a client must not reuse the connection');
    assert.equal((JSON.parse(r.body) as { error: { field: string } }).error.field, 'resize.width');
  });

  it('multipart without a file, and an empty body, get 400 JSON naming "file"', async () => {
    const form = new FormData();
    form.append('options', '{}');
    const res = await request(`${base}/v1/images`, { method: 'POST', ...await formBody(form) });
    assert.equal(res.statusCode, 400);
    assert.equal((await res.body.json() as { error: { field: string } }).error.field, 'file');
    const res2 = await request(`${base}/v1/images`, { method: 'POST', body: '' });
    assert.equal(res2.statusCode, 400);
    assert.equal((await res2.body.json() as { error: { field: string } }).error.field, 'file');
  });

  it('processor ImageErrors keep their status; unmapped processor errors are 422, never 500', async () => {
    const res = await request(`${base}/v1/images`, { method: 'POST', body: 'GARBAGE bytes' });
    assert.equal(res.statusCode, 415);
    assert.equal((await res.body.json() as { error: { code: string } }).error.code, 'unsupported_media_type');
    const res2 = await request(`${base}/v1/images`, { method: 'POST', body: 'EXPLODE bytes' });
    assert.equal(res2.statusCode, 422);
    assert.equal((await res2.body.json() as { error: { code: string } }).error.code, 'unprocessable_image');
  });

  it('Accept: image/* returns the bytes with the metadata in X-Image-Result', async () => {
    const res = await request(`${base}/v1/images`, { method: 'POST', body: Buffer.alloc(500, 1), headers: { accept: 'image/webp,image/*;q=0.8' } });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'image/webp');
    const meta = JSON.parse(String(res.headers['x-image-result'])) as { id: string; output: { url: string; bytes: number } };
    assert.equal(meta.output.url, `/v1/results/${meta.id}`);
    assert.deepEqual(Buffer.from(await res.body.arrayBuffer()), WEBP);
  });

  it('webhook: 202 with the id at once, the result sent later, for the customer the gateway named', async () => {
    sentSignal = gate();
    const direct = await request(`${base}/v1/images`, { method: 'POST', body: Buffer.alloc(50, 1), headers: { 'x-options': '{"webhook":"https://example.test/hook"}' } });
    assert.equal(direct.statusCode, 400, 'no customer (not through the gateway): no key to sign with');
    assert.match(((await direct.body.json()) as { error: { message: string } }).error.message, /customer's own key/);
    const res = await request(`${base}/v1/images`, { method: 'POST', body: Buffer.alloc(50, 1), headers: { 'x-options': '{"webhook":"https://example.test/hook"}', 'x-sluice-customer': 'acme' } });
    assert.equal(res.statusCode, 202);
    const body = await res.body.json() as { id: string; status: string };
    assert.equal(body.status, 'accepted');
    await sentSignal.promise;
    const last = sent.at(-1)!;
    assert.equal(last.url, 'https://example.test/hook');
    assert.equal(last.customer, 'acme');
    assert.equal(last.payload.id, body.id);
    assert.equal(last.payload.status, 'succeeded');
    assert.equal(last.delayMs, 0);
    assert.equal((await request(`${base}/v1/results/${body.id}`)).statusCode, 200);
  });

  it('webhook {url, delay}: the delay reaches the sender in ms; store without a writer is a 400', async () => {
    sentSignal = gate();
    const res = await request(`${base}/v1/images`, { method: 'POST', body: Buffer.alloc(50, 1), headers: { 'x-options': '{"webhook":{"url":"https://example.test/later","delay":7}}', 'x-sluice-customer': 'acme' } });
    assert.equal(res.statusCode, 202);
    await res.body.dump();
    await sentSignal.promise;
    assert.deepEqual([sent.at(-1)!.url, sent.at(-1)!.delayMs], ['https://example.test/later', 7000]);
    const store = { provider: 's3', bucket: 'b-1', path: 'k', credentials: { accessKeyId: 'a', secretAccessKey: 's' } };
    const refused = await request(`${base}/v1/images`, { method: 'POST', body: Buffer.alloc(50, 1), headers: { 'x-options': JSON.stringify({ store }) } });
    assert.equal(refused.statusCode, 400);
    assert.equal(((await refused.body.json()) as { error: { field: string } }).error.field, 'store');
  });

  it('fetch errors from the fetcher come back as their JSON; a non-JSON fetch body is 415; a missing url is 400', async () => {
    const res = await request(`${base}/v1/images/fetch`, { method: 'POST', body: JSON.stringify({ url: 'http://10.0.0.1/x.jpg' }), headers: { 'content-type': 'application/json' } });
    assert.equal(res.statusCode, 422);
    assert.equal((await res.body.json() as { error: { code: string } }).error.code, 'forbidden_destination');
    const res2 = await request(`${base}/v1/images/fetch`, { method: 'POST', body: 'url=x' });
    assert.equal(res2.statusCode, 415);
    await res2.body.dump();
    const res3 = await request(`${base}/v1/images/fetch`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    assert.equal(res3.statusCode, 400);
    assert.equal((await res3.body.json() as { error: { field: string } }).error.field, 'url');
  });

  it('unknown, malformed and routeless paths are 404 JSON; wrong methods 405; detect off is 503', async () => {
    for (const path of ['/v1/results/AAAAAAAAAAAAAAAAAAAAAA', '/v1/results/../../etc/passwd', '/v1/results/x', '/nope']) {
      const res = await request(`${base}${path}`);
      assert.equal(res.statusCode, 404, path);
      const body = await res.body.json() as { error: { code: string; request_id: string } };
      assert.equal(body.error.code, 'not_found');
      assert.equal(body.error.request_id, res.headers['x-request-id']);
    }
    const res = await request(`${base}/v1/images`);
    assert.equal(res.statusCode, 405);
    assert.equal(res.headers.allow, 'POST');
    await res.body.dump();
    const det = await request(`${base}/v1/detect`, { method: 'POST', body: Buffer.alloc(10, 1) });
    assert.equal(det.statusCode, 503);
    assert.equal((await det.body.json() as { error: { code: string } }).error.code, 'unavailable');
  });

  it('/openapi.json is OpenAPI 3.1 and lists every endpoint; /metrics has the load gauges; /healthz answers', async () => {
    const doc = await (await request(`${base}/openapi.json`)).body.json() as { openapi: string; paths: Record<string, unknown> };
    assert.match(doc.openapi, /^3\.1\.\d+$/);
    for (const p of ['/v1/images', '/v1/images/fetch', '/v1/results/{id}', '/v1/detect', '/openapi.json', '/healthz', '/metrics']) {
      assert.ok(p in doc.paths, p);
    }
    const metrics = await (await request(`${base}/metrics`)).body.text();
    assert.match(metrics, /^sluice_backend_inflight 0$/m);
    assert.match(metrics, /^sluice_backend_queued 0$/m);
    assert.match(metrics, /^sluice_backend_capacity 2$/m);
    assert.match(metrics, /sluice_backend_processing_seconds_bucket\{le="0\.005",endpoint="images"\}/);
    const health = await request(`${base}/healthz`);
    assert.equal(health.statusCode, 200);
    assert.ok(health.headers['x-backend-load']);
    // Bodyless requests keep the connection (only an unread body forces a close).
    assert.notEqual(health.headers.connection, 'close');
    await health.body.dump();
  });
});
