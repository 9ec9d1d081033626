// The balancing fixture run for real, for what the importer translates: routing and
// limits. nginx runs the fixture with its balancing (least_conn, backup, down, random
// two), map, if, try_files and regex locations as written; only TLS and the port-80
// redirect server are removed (no certificates, no privileged port), and the backend
// addresses point at local backends. Balancing options are reported as untranslated for
// now, so which backend answers is not compared, only what each request gets.
//
// location / has two limit_req: byuri ($request_uri, 1r/s, untranslated: the importer
// reports it and Sluice does not enforce it) and byauth (Authorization, 30r/m burst=5
// delay=2). The trace gives every request its own URI, so byuri, which only ever sees a
// new key, never refuses or delays on nginx either; the last test shows the difference
// when it would.
//
// Tolerance: none. byauth drains 1000 milli-requests every 2 s, so every decision is
// ~2 s of drain from an edge; delays are 2, 4 and 6 s, and a request counts as delayed
// when it is still unanswered after HELD_MS.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { GatewayProcess } from '../../test/harness/gateway.js';
import { sendOwn } from '../../test/harness/held-request.js';
import type { NginxProcess } from '../../test/harness/nginx.js';
import { within } from '../../test/harness/wait.js';
import { startPair, type ReplayPair } from '../../test/harness/nginx-replay.js';

const HELD_MS = 1000;
const ADDRESSES = ['10.0.0.1:8080', '10.0.0.2:8080', '10.0.0.3:8080', 'app1.internal:9000', 'app2.internal:9000'];

/** TLS and the second (port 80) server cannot run unprivileged and without certificates. */
function withoutTls(main: string): string {
  return main
    .replace('listen 8443 ssl http2;', 'listen 8443;')
    .replace(/^\s*ssl_certificate(_key)? [^;]*;\n/gm, '')
    .replace(/\n {4}server \{\n {8}listen 80;[\s\S]*?\n {4}\}\n/, '\n');
}

let uri = 0;

/** Requests sent at once on their own connections, each to a URI never used before; 'held' when unanswered after HELD_MS. */
async function burst(url: string, prefix: string, headers: Record<string, string>, n: number): Promise<string[]> {
  const sent = Array.from({ length: n }, () => sendOwn(url, `${prefix}${++uri}`, headers));
  const out = await Promise.all(sent.map(async (r) => String(await within(r.done.then((a) => a.status), HELD_MS, 'held'))));
  for (const r of sent) r.abort();
  return out.sort();
}

async function trace(url: string): Promise<Record<string, string[]>> {
  return {
    // byauth: excess 0..8000: up to delay=2 (2000) at once, 3000..5000 delayed (2, 4, 6 s), over burst 5 refused.
    auth: await burst(url, '/item/', { authorization: 'Bearer t1' }, 9),
    // Another credential, another bucket.
    other: await burst(url, '/item/', { authorization: 'Bearer t2' }, 3),
    // No Authorization: byauth's key is empty, not limited.
    anonymous: await burst(url, '/item/', {}, 10),
    ws: await burst(url, '/ws/', {}, 5),
  };
}

describe('import-nginx: the balancing fixture routes and limits like the nginx it came from', () => {
  let pair: ReplayPair | undefined;
  let ngx: NginxProcess | undefined;
  let gw: GatewayProcess | undefined;

  before(async () => {
    pair = await startPair('balancing', ADDRESSES, '/never-held', withoutTls);
    ({ nginx: ngx, sluice: gw } = pair);
  });

  after(() => pair?.stop());

  it('limit_req byauth (delay=2) on location /, the unlimited /ws: same answer for every request', async () => {
    const n = await trace(ngx!.url);
    const s = await trace(gw!.url);
    assert.deepEqual(n, {
      auth: ['200', '200', '200', '503', '503', '503', 'held', 'held', 'held'],
      other: ['200', '200', '200'],
      anonymous: Array(10).fill('200'),
      ws: Array(5).fill('200'),
    }, 'nginx decided differently from the trace\'s design');
    assert.deepEqual(s, n);
  });

  it('the untranslated byuri zone is really not enforced by Sluice (as the report says), and is by nginx', async () => {
    const twice = async (url: string): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < 2; i++) out.push((await sendOwn(url, '/same-uri').done).status);
      return out;
    };
    assert.deepEqual(await twice(ngx!.url), [200, 503]);
    assert.deepEqual(await twice(gw!.url), [200, 200]);
  });
});
