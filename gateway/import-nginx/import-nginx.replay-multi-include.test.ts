// The multi-include fixture run for real: nginx following the fixture's includes as
// written, Sluice with its import, in front of the same backends, one scenario each:
// - /v1/images (limit_req images_key by X-API-Key, 10r/s burst=20 delay=5): which
//   requests pass at once, which are delayed and by how long, which are refused (503);
// - /v1/images/fetch (nested, its own limit_req burst=2 without delay=: every excess request delayed);
// - /v1/results/ (^~, limit_req results_ip by client address, 120r/m burst=60 nodelay);
// - / (no limits);
// - limit_conn key_conn 4 by X-API-Key, status 429, held requests; no key, no limit.
//
// Tolerance. Decisions: none; each request sits at least 50 ms of drain from a bucket
// or delay edge (numbers at each step), more than a loopback burst takes. Delays are
// compared as times: the delayed answers of one burst, sorted, must match nginx's within
// DELAY_TOLERANCE_MS (timers, connection setup and scheduling on a 2-core machine), and
// a 200 counts as delayed when it took DELAYED_MS or more (the shortest designed delay is 50 ms;
// an undelayed request on a loaded 2-core machine has been seen to take 25 ms).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { GatewayProcess } from '../../test/harness/gateway.js';
import { Holder, holdingAcross, sendOwn } from '../../test/harness/held-request.js';
import type { NginxProcess } from '../../test/harness/nginx.js';
import type { TestBackend } from '../../test/harness/test-backend.js';
import { startPair, type ReplayPair } from '../../test/harness/nginx-replay.js';

const DELAY_TOLERANCE_MS = 40;
const DELAYED_MS = 40;

interface Timed { readonly status: number; readonly ms: number }

/** `n` requests sent at once, each on its own connection; answers in sending order. */
async function burst(url: string, path: string, headers: Record<string, string>, n: number): Promise<Timed[]> {
  const t0 = performance.now();
  return Promise.all(Array.from({ length: n }, async () => {
    const a = await sendOwn(url, path, headers).done;
    return { status: a.status, ms: performance.now() - t0 };
  }));
}

/** A burst summarised: how many passed at once, the delayed ones' times (sorted), the refusals by status. */
interface Shape { readonly immediate: number; readonly delayedMs: number[]; readonly refused: Record<number, number> }

function shape(answers: readonly Timed[]): Shape {
  const ok = answers.filter((a) => a.status === 200);
  const refused: Record<number, number> = {};
  for (const a of answers) if (a.status !== 200) refused[a.status] = (refused[a.status] ?? 0) + 1;
  return {
    immediate: ok.filter((a) => a.ms < DELAYED_MS).length,
    delayedMs: ok.filter((a) => a.ms >= DELAYED_MS).map((a) => Math.round(a.ms)).sort((x, y) => x - y),
    refused,
  };
}

interface Run { readonly images1: Shape; readonly images2: Shape; readonly fetch: Shape; readonly results: Record<number, number>; readonly root: Record<number, number> }

async function trace(url: string): Promise<Run> {
  const key = (k: string): Record<string, string> => ({ 'x-api-key': k });
  // 4 at once: excess 0..3000, all within delay=5 (5000): at once. 4, so limit_conn 4 never binds.
  const t0 = performance.now();
  const images1 = shape(await burst(url, '/v1/images/a', key('key-d'), 4));
  // 50 ms after the first: 3000 drained by ~500, so 21 requests find 3500, 4500 (at once),
  // 5500..19500 (delayed (e - 5000) / 10 ms: 50..1450), 20500..23500 (over burst 20: 503).
  // Delayed requests wait in limit_req, before limit_conn, so they hold no slot meanwhile.
  await sleep(Math.max(0, t0 + 50 - performance.now()));
  const images2 = shape(await burst(url, '/v1/images/b', key('key-d'), 21));
  // Nested location, burst=2, no delay=: excess 0 at once, 1000 and 2000 delayed 100 and 200 ms, 3000 refused.
  const fetch = shape(await burst(url, '/v1/images/fetch/x', key('key-f'), 4));
  // 120r/m burst=60 nodelay by address, sequentially: 61 pass; the 62nd finds 61000 less
  // 2 per ms elapsed, over 60000 unless the 62 took 500 ms.
  const results: Record<number, number> = {};
  for (let i = 0; i < 62; i++) {
    const a = await sendOwn(url, `/v1/results/${i}`).done;
    results[a.status] = (results[a.status] ?? 0) + 1;
  }
  const root: Record<number, number> = {};
  for (const a of await burst(url, '/anything', {}, 20)) root[a.status] = (root[a.status] ?? 0) + 1;
  return { images1, images2, fetch, results, root };
}

describe('import-nginx: the multi-include fixture decides like the nginx it came from', () => {
  let pair: ReplayPair | undefined;
  let ngx: NginxProcess | undefined;
  let gw: GatewayProcess | undefined;
  let backends: readonly TestBackend[] = [];

  before(async () => {
    // Paths under the hold prefix are held open until released, for limit_conn.
    pair = await startPair('multi-include', ['127.0.0.1:17101', '127.0.0.1:17102', '127.0.0.1:17103'], '/v1/images/hold');
    ({ nginx: ngx, sluice: gw, backends } = pair);
  });

  after(() => pair?.stop());

  it('limit_req by header with delay=, the nested location, ^~ by address, the unlimited root: same decisions, same delays', async () => {
    // Warm both edges on the unlimited root first, so the first limited burst does not pay
    // for cold upstream connections and count as delayed.
    for (const url of [ngx!.url, gw!.url]) await burst(url, '/warm-up', {}, 8);
    const n = await trace(ngx!.url);
    const s = await trace(gw!.url);
    // The trace means what its comments say: checked against nginx itself first.
    assert.deepEqual({ ...n.images1, delayedMs: n.images1.delayedMs.length }, { immediate: 4, delayedMs: 0, refused: {} }, JSON.stringify(n.images1));
    assert.deepEqual({ ...n.images2, delayedMs: n.images2.delayedMs.length }, { immediate: 2, delayedMs: 15, refused: { 503: 4 } }, JSON.stringify(n.images2));
    assert.deepEqual({ ...n.fetch, delayedMs: n.fetch.delayedMs.length }, { immediate: 1, delayedMs: 2, refused: { 503: 1 } }, JSON.stringify(n.fetch));
    assert.deepEqual(n.results, { 200: 61, 503: 1 });
    assert.deepEqual(n.root, { 200: 20 });
    for (const [name, a, b] of [['images1', n.images1, s.images1], ['images2', n.images2, s.images2], ['fetch', n.fetch, s.fetch]] as const) {
      assert.equal(b.immediate, a.immediate, `${name}: passed at once`);
      assert.deepEqual(b.refused, a.refused, `${name}: refused`);
      assert.equal(b.delayedMs.length, a.delayedMs.length, `${name}: delayed (nginx ${a.delayedMs.join(',')}; sluice ${b.delayedMs.join(',')})`);
      const off = a.delayedMs.map((ms, i) => Math.abs(ms - b.delayedMs[i]!));
      assert.ok(Math.max(0, ...off) <= DELAY_TOLERANCE_MS, `${name}: delays differ by more than ${DELAY_TOLERANCE_MS} ms (nginx ${a.delayedMs.join(',')}; sluice ${b.delayedMs.join(',')})`);
    }
    // The designed delays, 100 ms apart, on nginx too: delay= is really being exercised.
    assert.ok(n.images2.delayedMs.every((ms, i) => Math.abs(ms - (50 + 100 * i)) <= 60), `nginx delays ${n.images2.delayedMs.join(',')}`);
    assert.deepEqual(s.results, n.results);
    assert.deepEqual(s.root, n.root);
  });

  it('limit_conn key_conn 4 by X-API-Key, status 429: a 5th held request of a key is refused; no key, no limit', async () => {
    const run = async (url: string): Promise<string[]> => {
      const holder = new Holder(url, holdingAcross(backends));
      const steps: string[] = [];
      try {
        // limit_req images_key lets these pass at once (excess 0..4000 <= delay 5000); limit_conn decides.
        const first = await holder.hold('/v1/images/hold/1', { 'x-api-key': 'key-h' }, 4);
        steps.push(`5th ${(await sendOwn(url, '/v1/images/hold/1', { 'x-api-key': 'key-h' }).done).status}`);
        assert.ok(backends.find((b) => b.held() > 0)!.releaseOne());
        steps.push(`released ${(await Promise.race(first.map((r) => r.done))).status}`);
        await holder.hold('/v1/images/hold/1', { 'x-api-key': 'key-h' }, 1);
        steps.push('next admitted');
        await holder.hold('/v1/images/hold/2', {}, 6);
        steps.push('6 without a key admitted');
      } finally {
        holder.close();
      }
      return steps;
    };
    const expected = ['5th 429', 'released 200', 'next admitted', '6 without a key admitted'];
    assert.deepEqual(await run(ngx!.url), expected, 'nginx');
    assert.deepEqual(await run(gw!.url), expected, 'sluice');
  });
});
