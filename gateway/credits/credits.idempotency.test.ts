import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { admin } from '../../test/harness/admin.js';
import { sha256, testConfig } from '../../test/harness/config.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { startRedis, type RedisProcess } from '../../test/harness/redis.js';
import { waitUntil } from '../../test/harness/test-backend.js';
import { startWorkBackend, type WorkBackend } from '../../test/harness/work-backend.js';
import { keySchema } from '../store/key-schema.js';

// Idempotency-Key on POST /v1/images and /v1/detect (draft-ietf-httpapi-idempotency-key-header-06),
// across two gateways sharing a real Redis, and after a gateway restart: a repeat gets
// the original response and is neither processed nor charged again; another payload
// under the same key is 422, a repeat while the first runs is 409.

const PLANS = { idem: { rate: 1000, burst: 1000, quota_day: 10_000, costs: { base: 1, format_auto: 4 } } };
const KEYS = [
  { digest: sha256('idem-a'), customer: 'idem-a', plan: 'idem' },
  { digest: sha256('idem-b'), customer: 'idem-b', plan: 'idem' },
];
const MAX_RESPONSE = 1024;
const MAX_REQUEST = 4096;

interface Reply { readonly status: number; readonly headers: Record<string, string | string[] | undefined>; readonly body: Buffer }

function config(backend: WorkBackend, store: object): object {
  return testConfig({
    upstreams: [backend.url], store: store as never, plans: PLANS, keys: KEYS, log: { access: false },
    billing: { idempotency: { max_response_bytes: MAX_RESPONSE, max_request_bytes: MAX_REQUEST } },
  });
}

function suite(name: string, gateways: number, store: () => Promise<{ cfg: object; stop(): Promise<void> }>): void {
  describe(`Idempotency-Key (${name})`, () => {
    let backend: WorkBackend;
    let gws: GatewayProcess[] = [];
    let stopStore: () => Promise<void>;
    let cfg: object;
    before(async () => {
      backend = await startWorkBackend();
      const s = await store();
      stopStore = s.stop;
      cfg = config(backend, s.cfg);
      // One after another: on a busy host, processes started together can each miss their start-up deadline.
      for (let i = 0; i < gateways; i++) gws.push(await spawnGateway(cfg));
    });
    after(async () => {
      await Promise.all(gws.map((g) => g.stop()));
      await backend?.close();
      await stopStore?.();
    });

    const gw = (i: number): GatewayProcess => gws[i % gws.length]!;
    const post = async (i: number, key: string | undefined, headers: Record<string, string> = {}, body = 'image-bytes', path = '/v1/images', customer = 'idem-a'): Promise<Reply> => {
      const res = await request(`${gw(i).url}${path}`, {
        method: 'POST', body,
        headers: { 'x-api-key': customer, ...(key === undefined ? {} : { 'idempotency-key': key }), ...headers },
      });
      return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
    };
    const dayUsed = async (customer = 'idem-a'): Promise<number> => (await admin(gw(0).adminUrl, 'GET', `/admin/customers/${customer}/usage`)).body.day_used as number;
    const processed = (path = '/v1/images'): number => backend.received.get(path) ?? 0;
    const uniqKey = (label: string): string => `${label}-${name.replace(/\W+/g, '-')}-${Math.random().toString(36).slice(2)}`;

    it('a repeat gets the original response (status, body, result id) and is neither processed nor charged again', async () => {
      const key = uniqKey('k1');
      const before = processed();
      const used = await dayUsed();
      const first = await post(0, key, { 'x-options': '{"format":"auto"}' });
      assert.equal(first.status, 200);
      assert.equal(first.headers['idempotent-replayed'], undefined);
      await waitUntil(async () => (await dayUsed()) === used + 5, 5000, 'the first request charged');
      for (let i = 1; i <= 3; i++) {
        const again = await post(i, key, { 'x-options': '{"format":"auto"}' });
        assert.equal(again.status, 200);
        assert.equal(again.headers['idempotent-replayed'], 'true');
        assert.equal(again.headers['content-type'], 'application/json');
        assert.deepEqual(JSON.parse(again.body.toString()), JSON.parse(first.body.toString()), 'the same result id');
        assert.notEqual(again.headers['x-request-id'], first.headers['x-request-id']);
      }
      assert.equal(processed(), before + 1);
      assert.equal(await dayUsed(), used + 5, 'repeats are not charged');
      // The key may come as an sf-string (the draft's form) or bare: the same key.
      assert.equal((await post(1, `"${key}"`, { 'x-options': '{"format":"auto"}' })).headers['idempotent-replayed'], 'true');
    });

    it('the same key with another payload is 422; another customer\'s same key is another key', async () => {
      const key = uniqKey('k2');
      assert.equal((await post(0, key)).status, 200);
      for (const [headers, body] of [[{}, 'other-bytes'], [{ 'x-options': '{"format":"webp"}' }, 'image-bytes']] as const) {
        const r = await post(1, key, headers, body);
        assert.equal(r.status, 422);
        assert.equal(JSON.parse(r.body.toString()).error.code, 'idempotency_key_reused');
      }
      const other = await post(1, key, {}, 'image-bytes', '/v1/images', 'idem-b');
      assert.equal(other.status, 200);
      assert.equal(other.headers['idempotent-replayed'], undefined);
    });

    it('a repeat while the first is still running is 409 with Retry-After, then a replay once it is done', async () => {
      const key = uniqKey('k3');
      const slow = post(0, key, { 'x-test-delay-ms': '1500' }, 'slow', '/v1/detect');
      await waitUntil(() => processed('/v1/detect') > 0 && backend.received.get('/v1/detect')! >= 1, 5000, 'the first at the backend');
      const busy = await post(1, key, { 'x-test-delay-ms': '1500' }, 'slow', '/v1/detect');
      assert.equal(busy.status, 409);
      assert.equal(JSON.parse(busy.body.toString()).error.code, 'idempotency_in_progress');
      assert.equal(busy.headers['retry-after'], '1');
      const first = await slow;
      assert.equal(first.status, 200);
      const replay = await post(1, key, { 'x-test-delay-ms': '1500' }, 'slow', '/v1/detect');
      assert.equal(replay.headers['idempotent-replayed'], 'true', `${replay.status} ${replay.body.toString()}`);
      assert.deepEqual(replay.body, first.body);
    });

    it('a response failed by a backend is not kept: the retry runs again (and the failure was refunded)', async () => {
      const key = uniqKey('k4');
      const before = processed();
      const used = await dayUsed();
      const first = await post(0, key, { 'x-test-status': '500' });
      assert.equal(first.status, 500, first.body.toString());
      const retry = await post(1, key, { 'x-test-status': '500' });
      assert.equal(retry.status, 500, retry.body.toString());
      assert.equal(retry.headers['idempotent-replayed'], undefined);
      assert.equal(processed(), before + 2);
      await waitUntil(async () => (await dayUsed()) === used, 5000, 'both refunded');
      // A client error is the request's own answer: kept and replayed like a success.
      const bad = uniqKey('k4b');
      const kept = await post(0, bad, { 'x-test-status': '400' });
      assert.equal(kept.status, 400, kept.body.toString());
      const again = await post(1, bad, { 'x-test-status': '400' });
      assert.equal(again.headers['idempotent-replayed'], 'true', `${again.status} ${again.body.toString()}`);
    });

    it(`a response over max_response_bytes (${MAX_RESPONSE}) is replayed as 303 See Other to its result URL`, async () => {
      const key = uniqKey('k5');
      const first = await post(0, key, { accept: 'image/webp', 'x-test-bytes': '5000' });
      assert.equal(first.status, 200);
      assert.equal(first.body.length, 5000);
      const small = await post(1, uniqKey('k5s'), { accept: 'image/webp', 'x-test-bytes': String(MAX_RESPONSE) });
      assert.equal(small.status, 200);
      const again = await post(1, key, { accept: 'image/webp', 'x-test-bytes': '5000' });
      assert.equal(again.status, 303);
      assert.equal(again.headers.location, first.headers['content-location']);
      assert.equal(again.headers['idempotent-replayed'], 'true');
    });

    it(`a request with a key is read whole first, so its body may be at most max_request_bytes (${MAX_REQUEST}): 413 beyond`, async () => {
      const before = processed();
      const big = await post(0, uniqKey('k8'), {}, 'x'.repeat(MAX_REQUEST + 1));
      assert.equal(big.status, 413);
      assert.equal(JSON.parse(big.body.toString()).error.code, 'payload_too_large');
      assert.equal((await post(0, uniqKey('k8'), {}, 'x'.repeat(MAX_REQUEST))).status, 200);
      // Without a key the same body streams as usual.
      assert.equal((await post(0, undefined, {}, 'x'.repeat(MAX_REQUEST + 1))).status, 200);
      assert.equal(processed(), before + 2);
    });

    it('a malformed key is 400; a key on another method or path is ignored', async () => {
      for (const bad of ['', 'two words', 'x'.repeat(256), '"unterminated']) {
        const r = await post(0, bad);
        assert.equal(r.status, 400, JSON.stringify(bad));
        assert.match(JSON.parse(r.body.toString()).error.message as string, /Idempotency-Key/);
      }
      const before = processed('/v1/other');
      const key = uniqKey('k6');
      await post(0, key, {}, 'x', '/v1/other');
      await post(1, key, {}, 'x', '/v1/other');
      assert.equal(processed('/v1/other'), before + 2);
    });

    if (gateways > 1) {
      it('the client has the last byte of a kept response only once Redis holds it, so a repeat sent at once is a replay', async () => {
        // With Content-Length framing the whole response is the client's at its last byte,
        // whenever the connection's end comes. Redis's writes are paused from before the
        // backend answers until well after, so the gateway's keeping of the response waits:
        // the last byte must wait with it (a client that had it first, and sent its repeat to
        // another gateway at once, was answered 409 or had its request run again).
        const key = uniqKey('k9');
        const before = processed();
        const first = post(0, key, { 'x-test-delay-ms': '300' });
        await waitUntil(() => processed() > before, 5000, 'the request at the backend');
        const probe = new Redis(redis!.url, { lazyConnect: true });
        try {
          await probe.connect();
          await probe.call('CLIENT', 'PAUSE', '1500', 'WRITE');
          const r = await first;
          assert.equal(r.status, 200);
          assert.equal(await probe.hget(keySchema('sluice:').idempotency('idem-a', key), 'state'), 'd', 'kept before the client had the last byte');
        } finally {
          probe.disconnect();
        }
        const repeat = await post(1, key, { 'x-test-delay-ms': '300' });
        assert.equal(repeat.headers['idempotent-replayed'], 'true', `${repeat.status} ${repeat.body.toString()}`);
      });

      it('survives a gateway restart: the repeat is answered from Redis by a new process', async () => {
        const key = uniqKey('k7');
        const first = await post(0, key);
        await gws[0]!.stop();
        gws[0] = await spawnGateway(cfg);
        const before = processed();
        const again = await post(0, key);
        assert.equal(again.headers['idempotent-replayed'], 'true');
        assert.deepEqual(again.body, first.body);
        assert.equal(processed(), before);
      });
    }
  });
}

suite('memory store, one gateway', 1, async () => ({ cfg: { kind: 'memory' }, stop: async () => {} }));

let redis: RedisProcess | undefined;
suite('Redis, two gateways', 2, async () => {
  redis = await startRedis();
  return { cfg: { kind: 'redis', url: redis.url, timeout_ms: 2000 }, stop: () => redis!.stop() };
});
