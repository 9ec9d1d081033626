// The api-edge fixture run for real: nginx with the fixture as written (ports and
// runtime paths rendered), Sluice with what `sluice import-nginx` made of the same file,
// both in front of the same backends, and one request trace replayed to each; then
// limit_conn (`limit_conn addr 20` on /v1/, status 429) with requests held open.
//
// Tolerance: none. Every decision in the trace sits about 80 ms or more of leak away from
// a bucket boundary (5 r/s = one request per 200 ms; the refill pause leaves ~5.4
// requests' worth since key-a's last admitted request, between the 5th and 6th), and a
// burst of sequential loopback requests takes a few ms, so timing jitter cannot flip one.
// If a run is slow enough to eat that margin, the failure shows the elapsed times next
// to the differing decisions.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import type { GatewayProcess } from '../../test/harness/gateway.js';
import { Holder, holdingAcross, sendOwn } from '../../test/harness/held-request.js';
import type { NginxProcess } from '../../test/harness/nginx.js';
import type { TestBackend } from '../../test/harness/test-backend.js';
import { startPair, type ReplayPair } from '../../test/harness/nginx-replay.js';

/** One step of the trace: a pause before it, then sequential requests with one key (or none). */
interface Step { readonly pauseMs: number; readonly key: string | undefined; readonly count: number; readonly path: string }

const TRACE: Step[] = [
  { pauseMs: 0, key: undefined, count: 20, path: '/v1/things' },   // an empty key is not limited (and warms both up)
  { pauseMs: 0, key: 'key-b', count: 3, path: '/v1/things' },      // its own bucket
  { pauseMs: 0, key: 'key-a', count: 20, path: '/v1/things' },     // 1 + burst 10 pass, 9 refused
  // nginx leaks from the last *admitted* request, so the pause follows key-a's burst
  // directly: 1080 ms + the refused tail (a few ms) is ~5.4 requests' worth, 5 pass.
  { pauseMs: 1080, key: 'key-a', count: 8, path: '/v1/things' },
  { pauseMs: 0, key: 'key-b', count: 12, path: '/v1/other' },      // drained during the pause: 1 + 10 pass
];

async function replay(url: string): Promise<{ decisions: string[]; elapsedMs: number[] }> {
  const pool = new Pool(url, { connections: 1, pipelining: 1 });
  const decisions: string[] = [];
  const elapsedMs: number[] = [];
  const t0 = performance.now();
  try {
    for (const s of TRACE) {
      if (s.pauseMs > 0) await sleep(s.pauseMs);
      for (let i = 0; i < s.count; i++) {
        const res = await pool.request({ method: 'GET', path: s.path, headers: s.key === undefined ? {} : { 'x-api-key': s.key } });
        await res.body.dump();
        decisions.push(`${s.key ?? '-'}:${res.statusCode}`);
        elapsedMs.push(Math.round(performance.now() - t0));
      }
    }
  } finally {
    await pool.close();
  }
  return { decisions, elapsedMs };
}

describe('import-nginx: the imported config decides like the nginx it came from', () => {
  let pair: ReplayPair | undefined;
  let ngx: NginxProcess | undefined;
  let gw: GatewayProcess | undefined;
  let backends: readonly TestBackend[] = [];

  before(async () => {
    // Paths under the hold prefix are held open until released, for limit_conn.
    pair = await startPair('api-edge', ['127.0.0.1:17001', '127.0.0.1:17002', '127.0.0.1:17003'], '/v1/hold');
    ({ nginx: ngx, sluice: gw, backends } = pair);
  });

  after(() => pair?.stop());

  it('same admit/reject decision for every request of the trace', async () => {
    const n = await replay(ngx!.url);
    const s = await replay(gw!.url);
    const expectNginx = [
      ...Array(20).fill('-:200'),
      ...Array(3).fill('key-b:200'),
      ...Array(11).fill('key-a:200'), ...Array(9).fill('key-a:429'),
      ...Array(5).fill('key-a:200'), ...Array(3).fill('key-a:429'),
      ...Array(11).fill('key-b:200'), ...Array(1).fill('key-b:429'),
    ];
    // The trace means what the comments say: checked against nginx itself first.
    assert.deepEqual(n.decisions, expectNginx, `nginx decided differently from the trace's design (elapsed ms: ${n.elapsedMs.join(',')})`);
    const diff = n.decisions.flatMap((d, i) => (d === s.decisions[i] ? [] : [`#${i}: nginx ${d} at ${n.elapsedMs[i]} ms, sluice ${s.decisions[i]} at ${s.elapsedMs[i]} ms`]));
    assert.deepEqual(diff, [], 'Sluice (imported config) and nginx disagree');
  });
  it('limit_conn addr 20: the 21st request in flight from one address is refused with 429 on both; a released slot admits the next', async () => {
    const run = async (url: string): Promise<string[]> => {
      const holder = new Holder(url, holdingAcross(backends));
      const steps: string[] = [];
      try {
        // No X-API-Key: the per_key limit_req does not apply, so only limit_conn decides.
        const first = await holder.hold('/v1/hold/x', {}, 20);
        steps.push(`21st ${(await sendOwn(url, '/v1/hold/x').done).status}`);
        const held = backends.find((b) => b.held() > 0)!;
        assert.ok(held.releaseOne());
        // Which held request that was is the backend's order; exactly one of them ends.
        const settled = await Promise.race(first.map((r) => r.done));
        steps.push(`released ${settled.status}`);
        await holder.hold('/v1/hold/x', {}, 1);
        steps.push('next admitted');
        steps.push(`then ${(await sendOwn(url, '/v1/hold/x').done).status}`);
      } finally {
        holder.close();
      }
      return steps;
    };
    const expected = ['21st 429', 'released 200', 'next admitted', 'then 429'];
    assert.deepEqual(await run(ngx!.url), expected, 'nginx');
    assert.deepEqual(await run(gw!.url), expected, 'sluice');
  });
});
