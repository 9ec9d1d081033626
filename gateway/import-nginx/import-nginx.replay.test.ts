// The api-edge fixture run for real: nginx with the fixture as written (ports and
// runtime paths rendered), Sluice with what `sluice import-nginx` made of the same file,
// both in front of the same echo backends, and one request trace replayed to each.
//
// Tolerance: none. Every decision in the trace sits about 80 ms or more of leak away from
// a bucket boundary (5 r/s = one request per 200 ms; the refill pause leaves ~5.4
// requests' worth since key-a's last admitted request, between the 5th and 6th), and a
// burst of sequential loopback requests takes a few ms, so timing jitter cannot flip one.
// If a run is slow enough to eat that margin, the failure shows the elapsed times next
// to the differing decisions.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { parse } from 'yaml';
import { startBackend } from '../../test/harness/backend.js';
import { CLI, spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { startNginx, type NginxProcess } from '../../test/harness/nginx.js';

type Backend = Awaited<ReturnType<typeof startBackend>>;

// Tests run from dist/; the fixtures stay in the source tree.
const FIXTURE = fileURLToPath(new URL('../../../gateway/import-nginx/fixtures/api-edge/nginx.conf', import.meta.url));
const out = mkdtempSync(join(tmpdir(), 'sluice-import-replay-'));

/** The fixture as nginx can run it unprivileged: our ports, our temp dir, logs there. */
function renderForNginx(text: string, ports: Record<string, number>): string {
  return text
    .replace(/^\s*(user|pid|error_log)\s[^;]*;/gm, '')
    .replace(/access_log [^;]*;/g, 'access_log off;')
    .replace('listen 127.0.0.1:18080', 'listen @@LISTEN@@')
    .replace(/127\.0\.0\.1:(1700\d)/g, (_, p: string) => `127.0.0.1:${ports[p]!}`)
    .replace(/^http \{/m, 'http {\n    client_body_temp_path @@RUN_DIR@@/client_body; proxy_temp_path @@RUN_DIR@@/proxy;'
      + ' fastcgi_temp_path @@RUN_DIR@@/fastcgi; uwsgi_temp_path @@RUN_DIR@@/uwsgi; scgi_temp_path @@RUN_DIR@@/scgi;')
    .replace(/^/, 'pid @@RUN_DIR@@/nginx.pid;\nerror_log @@RUN_DIR@@/error.log info;\n');
}

function importYaml(): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, 'import-nginx', FIXTURE, '--out', join(out, 'imported.yaml')], { timeout: 15_000 }, (err, _o, stderr) => {
      if (err !== null) reject(new Error(`import-nginx failed: ${stderr}`));
      else resolve(readFileSync(join(out, 'imported.yaml'), 'utf8'));
    });
  });
}

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
  let backends: Backend[] = [];
  let ngx: NginxProcess | undefined;
  let gw: GatewayProcess | undefined;

  before(async () => {
    backends = await Promise.all([startBackend(), startBackend(), startBackend()]);
    const ports: Record<string, number> = {};
    backends.forEach((b, i) => { ports[`1700${i + 1}`] = Number(new URL(b.url).port); });
    const cfg = parse(await importYaml()) as Record<string, any>;
    // Only what a test needs to differ: free ports, the same backends nginx uses.
    cfg.server.port = 0;
    cfg.admin = { host: '127.0.0.1', port: 0 };
    cfg.log = { level: 'info', access: false };
    for (const u of Object.values(cfg.upstreams) as { targets: string[] }[]) {
      u.targets = u.targets.map((t) => t.replace(/:(1700\d)$/, (_, p: string) => `:${ports[p]!}`));
    }
    [ngx, gw] = await Promise.all([
      startNginx({ template: renderForNginx(readFileSync(FIXTURE, 'utf8'), ports) }),
      spawnGateway(cfg),
    ]);
  });

  after(async () => {
    await Promise.all([ngx?.stop(), gw?.stop(), ...backends.map((b) => b.close())]);
    rmSync(out, { recursive: true, force: true });
  });

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
});
