// The multi-include fixture run for real: nginx following the fixture's includes as
// written, Sluice with its import, in front of the same backends, one scenario each:
// - /v1/images (limit_req images_key by X-API-Key, 10r/s burst=20 delay=5): which
//   requests pass at once, which are delayed and by how long, which are refused (503);
// - /v1/images/fetch (nested, its own limit_req burst=2 without delay=: every excess request delayed);
// - /v1/results/ (^~, limit_req results_ip by client address, 120r/m burst=60 nodelay);
// - / (no limits);
// - limit_conn key_conn 4 by X-API-Key, status 429, held requests; no key, no limit.
//
// Each server is judged on its own timestamps (test/harness/limit-req-judge.ts): when it
// decided each request, and what (nginx's $limit_req_status, Sluice's access log with the
// delay it set); nginx's arithmetic for the fixture's zones, run on those times, must give
// every decision, and a delayed answer must have been held at least its delay. However
// the machine's load spreads the bursts, each server is judged where it really was; the
// bursts are sized so that every outcome occurs on both.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { GatewayProcess } from '../../test/harness/gateway.js';
import { Holder, holdingAcross, sendOwn } from '../../test/harness/held-request.js';
import type { NginxProcess } from '../../test/harness/nginx.js';
import type { TestBackend } from '../../test/harness/test-backend.js';
import { awaitNginxDecisions, awaitSluiceDecisions, judgeLimitReq, tally, type JudgedRequest } from '../../test/harness/limit-req-judge.js';
import type { LimitReqCheck } from '../store/types.js';
import { NGINX_DECISIONS_LOG, startPair, type ReplayPair } from '../../test/harness/nginx-replay.js';

const IMAGES = { zone: 'images_key', rateMilli: 10_000 } as const;
/** What limit_req checks on each path of the trace (the fixture's locations); [] where no zone applies. */
function checksFor(path: string, key: string | undefined): LimitReqCheck[] {
  if (path.startsWith('/v1/images/fetch')) return key === undefined ? [] : [{ ...IMAGES, key, burstMilli: 2000, delayMilli: 0 }];
  if (path.startsWith('/v1/images')) return key === undefined ? [] : [{ ...IMAGES, key, burstMilli: 20_000, delayMilli: 5000 }];
  if (path.startsWith('/v1/results/')) return [{ zone: 'results_ip', key: '127.0.0.1', rateMilli: 2000, burstMilli: 60_000, delayMilli: 60_000 }];
  return [];
}

/** One server's run: every request sent, with its id and its checks. */
class Trace {
  readonly sent: JudgedRequest[] = [];
  constructor(private readonly url: string, private readonly run: string) {}

  private one(path: string, key: string | undefined): Promise<unknown> {
    const id = `${this.run}-${this.sent.length}`;
    this.sent.push({ id, checks: checksFor(path, key) });
    return sendOwn(this.url, path, { 'x-request-id': id, ...(key === undefined ? {} : { 'x-api-key': key }) }).done;
  }

  /** `n` requests at once, each on its own connection. */
  burst(path: string, key: string | undefined, n: number): Promise<unknown> {
    return Promise.all(Array.from({ length: n }, () => this.one(path, key)));
  }

  async sequence(path: (i: number) => string, n: number): Promise<void> {
    for (let i = 0; i < n; i++) await this.one(path(i), undefined);
  }
}

async function trace(url: string, run: string): Promise<JudgedRequest[]> {
  const t = new Trace(url, run);
  // 4 at once: excess 0..3000, within delay=5 (5000): at once. 4, so limit_conn 4 never binds.
  const t0 = performance.now();
  await t.burst('/v1/images/a', 'key-d', 4);
  // 50 ms after the first: 21 requests find what is left of 3000, then each adds 1000:
  // the first few at once, the rest delayed (e - 5000) / 10 ms, the last refused over
  // burst 20 unless the burst arrives spread over more than the drain. Delayed requests
  // wait in limit_req, before limit_conn, so they hold no slot meanwhile.
  await sleep(Math.max(0, t0 + 50 - performance.now()));
  await t.burst('/v1/images/b', 'key-d', 21);
  // Nested location, burst=2, no delay=: excess 0 at once, 1000 and 2000 delayed 100 and
  // 200 ms, the rest refused unless 8 requests take 500 ms to arrive.
  await t.burst('/v1/images/fetch/x', 'key-f', 8);
  // 120r/m burst=60 nodelay by address, sequentially: 61 pass at once; the later ones are
  // refused unless the 70 took 5 s.
  await t.sequence((i) => `/v1/results/${i}`, 70);
  await t.burst('/anything', undefined, 20);
  return t.sent;
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

  it('limit_req by header with delay=, the nested location, ^~ by address, the unlimited root: nginx\'s arithmetic on each server\'s clock, delays held', async () => {
    const sentToNginx = await trace(ngx!.url, 'nginx');
    const sentToSluice = await trace(gw!.url, 'sluice');
    // nginx stamps in wall-clock ms and drains and times its delays by its monotonic ms (1 ms apart at most); Sluice logs its drain clock.
    const judged = [
      ['nginx', sentToNginx, judgeLimitReq(sentToNginx, await awaitNginxDecisions(join(ngx!.dir, NGINX_DECISIONS_LOG), sentToNginx.map((r) => r.id)), 1, 2)],
      ['sluice', sentToSluice, judgeLimitReq(sentToSluice, await awaitSluiceDecisions(gw!, sentToSluice.map((r) => r.id)), 0)],
    ] as const;
    for (const [name, sent, j] of judged) {
      assert.deepEqual(j.mismatches, [], `${name} decided otherwise than nginx's arithmetic on its own timestamps`);
      const step = (from: number, n: number): string => JSON.stringify(tally(j.verdicts, sent.slice(from, from + n).map((r) => r.id)));
      const t = tally(j.verdicts);
      // The 20 on / have no zone; every outcome occurs (delay= on images and the nested burst=2, refusals over bursts).
      assert.ok(t.none === 20 && t.passed > 0 && t.delayed > 0 && t.rejected > 0,
        `${name}: images ${step(0, 4)} then ${step(4, 21)}, fetch ${step(25, 8)}, results ${step(33, 70)}, root ${step(103, 20)}`);
    }
    // Sluice's refusals are 503 (the fixture sets no limit_req_status) with its JSON error.
    const refusals = gw!.lines.filter((l) => l.msg === 'request' && l.limit_req === 'rejected');
    assert.ok(refusals.every((l) => l.status === 503 && l.error === 'rate_limited'), JSON.stringify(refusals.slice(0, 2)));
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
