import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { testConfig } from '../../test/harness/config.js';
import { spawnGateway } from '../../test/harness/gateway.js';
import { pollUntil } from '../../test/harness/poll.js';

// How the cluster primary waits for a starting worker: as long as the worker runs or says
// it is alive, however slow its start (a busy host needs many seconds just to load the
// modules), and no longer than server.worker_stall_ms once it does neither.
//
// A slow start made for real: the store is a TCP server that accepts and never answers,
// so every worker waits out its store deadlines (ready 2 s, subscribe 2 s) before it
// listens, twice worker_stall_ms at its minimum (2000 ms). The fixed 20 s budget this
// replaces failed a fleet's start on a host with load 30 in the same way.

const STALL_MS = 2000;

describe('cluster: a starting worker is waited for while it is alive', { timeout: 60_000 }, () => {
  let silentStore: Server;
  let storeUrl: string;
  let upstream: HttpServer;
  const sockets = new Set<Socket>();
  const config = (): Record<string, unknown> => testConfig({
    upstreams: [`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`],
    server: { worker_stall_ms: STALL_MS },
    store: { kind: 'redis', url: storeUrl, timeout_ms: 50 },
    log: { access: false },
  });

  before(async () => {
    silentStore = createServer((s) => { sockets.add(s); s.on('error', () => {}); s.resume(); });
    silentStore.listen(0, '127.0.0.1');
    await once(silentStore, 'listening');
    storeUrl = `redis://127.0.0.1:${(silentStore.address() as AddressInfo).port}`;
    upstream = createHttpServer((_req, res) => res.end('ok'));
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
  });
  after(() => {
    for (const s of sockets) s.destroy();
    silentStore?.close();
    upstream?.close();
  });

  it('workers that take longer than worker_stall_ms to start, alive, are waited for', async () => {
    const started = performance.now();
    const gw = await spawnGateway(config(), {}, ['--workers', '2']);
    try {
      const took = performance.now() - started;
      assert.equal(gw.lines.filter((l) => l.msg === 'worker ready').length, 2);
      // Each worker waited out its store deadlines before it listened: longer than the stall budget.
      assert.ok(took > 2 * STALL_MS, `the start took ${Math.round(took)} ms, expected the store deadlines to make it longer than ${2 * STALL_MS}`);
    } finally {
      await gw.stop();
    }
  });

  it('a starting worker that stops (SIGSTOP) is killed after worker_stall_ms and the start fails, saying so', async () => {
    const starting = spawnGateway(config(), {}, ['--workers', '2']);
    const failed = assert.rejects(starting, new RegExp(`neither ran nor spoke for ${STALL_MS} ms while starting \\(server\\.worker_stall_ms\\)`));
    // The primary is this test's child; its first forked child is a worker, still waiting on the store.
    const worker = await pollUntil(async () => childrenOf(process.pid).flatMap(childrenOf)[0], 30_000, 20);
    assert.ok(worker.value !== undefined, 'a worker was forked');
    process.kill(worker.value, 'SIGSTOP');
    await failed;
    // The primary's SIGKILL is sent before it exits, but a stopped task dies only once the
    // kernel runs its exit, which a busy host can delay past the primary's own exit: a full
    // run saw it still alive at that instant. Nothing else kills it (the test's process
    // group outlives the primary, so it is never orphaned), so its death is the evidence.
    const dead = await pollUntil(async () => (alive(worker.value!) ? undefined : true), 10_000, 20);
    assert.equal(dead.value, true, 'the silent worker was killed');
  });
});

function childrenOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((t) => readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/)).filter((s) => s !== '').map(Number);
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  try {
    // A zombie waiting for its parent to reap it is dead for this purpose.
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
