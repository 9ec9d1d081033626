// The api-edge fixture run for real: nginx with the fixture as written (ports and
// runtime paths rendered), Sluice with what `sluice import-nginx` made of the same file,
// both in front of the same backends, and one request trace replayed to each; then
// limit_conn (`limit_conn addr 20` on /v1/, status 429) with requests held open.
//
// Each server is judged on its own timestamps (test/harness/limit-req-judge.ts): nginx's
// access log says when it stamped each request and its $limit_req_status, Sluice's when
// its store decided; nginx's arithmetic for the fixture's zone, run on those times, must
// give every decision. Both agreeing with it is the equivalence, whatever the machine's
// load did to the trace's timing. The trace's pauses only make both outcomes occur.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import type { GatewayProcess } from '../../test/harness/gateway.js';
import { Holder, holdingAcross, sendOwn } from '../../test/harness/held-request.js';
import type { NginxProcess } from '../../test/harness/nginx.js';
import type { TestBackend } from '../../test/harness/test-backend.js';
import { awaitNginxDecisions, awaitSluiceDecisions, judgeLimitReq, tally, type JudgedRequest } from '../../test/harness/limit-req-judge.js';
import { NGINX_DECISIONS_LOG, startPair, type ReplayPair } from '../../test/harness/nginx-replay.js';

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

/** The trace's requests in order, each with its id and what limit_req checks: `limit_req zone=per_key burst=10 nodelay` (5r/s) by X-API-Key. */
function requests(run: string): JudgedRequest[] {
  let i = 0;
  return TRACE.flatMap((s) => Array.from({ length: s.count }, () => ({
    id: `${run}-${i++}`,
    checks: s.key === undefined ? [] : [{ zone: 'per_key', key: s.key, rateMilli: 5000, burstMilli: 10_000, delayMilli: 10_000 }],
  })));
}

/** Sends the trace, one request at a time, each with its id. */
async function replay(url: string, run: string): Promise<void> {
  const pool = new Pool(url, { connections: 1, pipelining: 1 });
  const ids = requests(run).map((r) => r.id);
  let i = 0;
  try {
    for (const s of TRACE) {
      if (s.pauseMs > 0) await sleep(s.pauseMs);
      for (let k = 0; k < s.count; k++) {
        const res = await pool.request({ method: 'GET', path: s.path, headers: { 'x-request-id': ids[i++]!, ...(s.key === undefined ? {} : { 'x-api-key': s.key }) } });
        await res.body.dump();
      }
    }
  } finally {
    await pool.close();
  }
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

  it('every decision of the trace is nginx\'s arithmetic on the deciding server\'s own clock, on both', async () => {
    await replay(ngx!.url, 'nginx');
    await replay(gw!.url, 'sluice');
    // nginx stamps in wall-clock ms and drains by its monotonic ms (1 ms apart at most); Sluice logs its drain clock.
    const ids = (run: string): string[] => requests(run).map((r) => r.id);
    const n = judgeLimitReq(requests('nginx'), await awaitNginxDecisions(join(ngx!.dir, NGINX_DECISIONS_LOG), ids('nginx')), 1, 2);
    const s = judgeLimitReq(requests('sluice'), await awaitSluiceDecisions(gw!, ids('sluice')), 0);
    for (const [name, j] of [['nginx', n], ['sluice', s]] as const) {
      assert.deepEqual(j.mismatches, [], `${name} decided otherwise than nginx's arithmetic on its own timestamps`);
      const t = tally(j.verdicts);
      // 20 unlimited, then key-a's burst of 20 against burst=10: some pass, some are refused, whatever the timing.
      assert.ok(t.none === 20 && t.passed > 0 && t.rejected > 0 && t.delayed === 0, `${name}: ${JSON.stringify(t)}`);
    }
    const refusals = gw!.lines.filter((l) => l.msg === 'request' && l.limit_req === 'rejected');
    assert.ok(refusals.every((l) => l.status === 429 && l.error === 'rate_limited'), 'limit_req_status 429, as the fixture says');
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
