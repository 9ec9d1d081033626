import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { parseStoreSection } from '../../common/store-config.js';
import { createWebhookEnqueuer } from '../../common/webhook-queue.js';
import { newMasterKey } from '../../test/harness/webhooks.js';
import { pollUntil } from '../../test/harness/poll.js';
import { sentinelConfig, type Fleet } from './fleet.js';

// The webhook queue's Redis failed over while deliveries wait for their retry: an
// enqueuer (the test process, as sluice-backend would be) queues N webhooks on the
// fleet's Sentinel-managed Redis, sluice-webhooks on the upstream host delivers them to a
// receiver that fails every attempt at first, so each waits in Redis as a delayed job;
// then the master is killed (kill -9), the sentinels promote a replica, the old master
// restarts on its AOF (and is made a replica), and the receiver starts accepting.

const WEBHOOKS = fileURLToPath(new URL('../../backends/webhooks/cli.js', import.meta.url));

export interface WebhookOutcome {
  readonly enqueued: number;
  /** Webhooks (by payload index) never answered 200. */
  readonly lost: number;
  /** Webhooks that arrived under more than one webhook-id. */
  readonly newIds: number;
  readonly deliveries: number;
  readonly duplicates: number;
  readonly failoverMs: number;
  readonly allDeliveredAfterFailoverMs: number;
  /** The delivering worker's last log output when something was lost, else empty. */
  readonly workerLog: string;
}

export async function webhookFailover(fleet: Fleet, n: number): Promise<WebhookOutcome> {
  const arrivals: { i: number; id: string; ok: boolean }[] = [];
  let accept = false;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const { i } = JSON.parse(Buffer.concat(chunks).toString()) as { i: number };
      arrivals.push({ i, id: String(req.headers['webhook-id']), ok: accept });
      res.writeHead(accept ? 200 : 503).end();
    });
  });
  server.listen(0, fleet.hosts.bridgeIp);
  await once(server, 'listening');
  const url = `http://${fleet.hosts.bridgeIp}:${(server.address() as AddressInfo).port}/hook`;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-faults-wh-'));
  const text = sentinelConfig(fleet.redis.map((r) => `${r.host.ip}:26379`));
  const file = join(dir, 'gateway.yaml');
  writeFileSync(file, text);
  const q = createWebhookEnqueuer({ store: parseStoreSection(text, { ...process.env, SLUICE_HOST: '', SLUICE_ADMIN_HOST: '' }), log: pino({ level: 'silent' }) });
  const worker = fleet.hosts.spawn(fleet.upstream, process.execPath, [WEBHOOKS, '--store', file, '--allow', `${fleet.hosts.bridgeIp}/32`,
    // 50 retries (the most there may be) a second apart: they must outlast the failover and
    // the restart (more than the 8 s of 20 retries 400 ms apart on a busy host), or the
    // webhooks are dead-lettered before the receiver accepts them, which is not what this measures.
    '--admin-port', '0', '--retry-schedule-ms', Array(50).fill('1000').join(','), '--stalled-interval-ms', '1000', '--lock-ms', '2000'],
  { env: { ...process.env, SLUICE_MASTER_KEY: newMasterKey() } });
  // Its log, for a run that lost something: what its Redis connections went through.
  const workerLog: string[] = [];
  const keep = (d: Buffer): void => { workerLog.push(d.toString()); if (workerLog.length > 200) workerLog.shift(); };
  worker.stdout!.on('data', keep);
  worker.stderr!.on('data', keep);
  try {
    for (let i = 0; i < n; i++) q.send('faults', url, { i });
    // Every webhook tried once and failed: each now waits in Redis for its retry.
    const tried = await pollUntil(async () => (new Set(arrivals.map((a) => a.i)).size === n ? true : undefined), 30_000, 50);
    if (tried.value === undefined) throw new Error(`only ${new Set(arrivals.map((a) => a.i)).size} of ${n} webhooks tried before the failover`);
    const old = fleet.redisOn((await fleet.masterIp())!);
    const killedAt = Date.now();
    old.child.kill('SIGKILL');
    const promoted = await pollUntil(async () => { const m = await fleet.masterIp(); return m !== undefined && m !== old.host.ip ? m : undefined; }, 20_000, 100);
    const failoverMs = Date.now() - killedAt;
    if (promoted.value === undefined) throw new Error('no replica promoted after the master was killed');
    await fleet.restartRedis(old);
    accept = true;
    const acceptedAt = Date.now();
    const done = await pollUntil(async () => (new Set(arrivals.filter((a) => a.ok).map((a) => a.i)).size === n ? true : undefined), 30_000, 50);
    const ids = new Map<number, Set<string>>();
    for (const a of arrivals) { const s = ids.get(a.i) ?? new Set(); s.add(a.id); ids.set(a.i, s); }
    const okCount = new Map<number, number>();
    for (const a of arrivals) if (a.ok) okCount.set(a.i, (okCount.get(a.i) ?? 0) + 1);
    return {
      enqueued: n,
      lost: n - okCount.size,
      newIds: [...ids.values()].filter((s) => s.size > 1).length,
      deliveries: arrivals.length,
      duplicates: [...okCount.values()].reduce((a, c) => a + c - 1, 0),
      failoverMs,
      allDeliveredAfterFailoverMs: done.value === undefined ? NaN : Date.now() - acceptedAt,
      workerLog: okCount.size === n ? '' : workerLog.join(''),
    };
  } finally {
    worker.kill('SIGKILL');
    await q.close(1000);
    server.closeAllConnections();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
