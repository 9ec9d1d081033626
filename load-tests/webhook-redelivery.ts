// npm run bench:webhook-redelivery: how long after `kill -9` of sluice-webhooks a
// delivery that was in flight is sent again, with the flags given in ARGS (default: the
// defaults, --lock-ms 10000 --stalled-interval-ms 5000). Each run: one delivery held open
// by the receiver, the worker killed, a new worker started at once, the time from the
// kill to the second arrival (same webhook-id) printed.
//   RUNS=3 ARGS='--lock-ms 2000 --stalled-interval-ms 1000' npm run bench:webhook-redelivery
import { pino } from 'pino';
import { createWebhookEnqueuer } from '../backends/webhooks/queue.js';
import { startRedis } from '../test/harness/redis.js';
import { newMasterKey, spawnWebhooks, startReceiver, urlStore } from '../test/harness/webhooks.js';

const RUNS = Number(process.env.RUNS ?? 3);
const ARGS = (process.env.ARGS ?? '').split(' ').filter((a) => a !== '');

const redis = await startRedis();
const rx = await startReceiver();
const env = { SLUICE_MASTER_KEY: newMasterKey() };
const q = createWebhookEnqueuer({ store: urlStore(redis.url), log: pino({ level: 'silent' }) });
const delays: number[] = [];
try {
  for (let run = 0; run < RUNS; run++) {
    const w = await spawnWebhooks(redis.url, ARGS, env);
    rx.reply = () => 'hold';
    const before = rx.deliveries.length;
    q.send('bench', `${rx.url}/run-${run}`, { run });
    await rx.until((ds) => ds.length === before + 1);
    await w.stop('SIGKILL');
    const killed = performance.now();
    rx.reply = () => ({ status: 200 });
    const next = await spawnWebhooks(redis.url, ARGS, env);
    await rx.until((ds) => ds.length === before + 2, 120_000);
    const [first, again] = rx.deliveries.slice(before) as [typeof rx.deliveries[0], typeof rx.deliveries[0]];
    if (first.headers['webhook-id'] !== again.headers['webhook-id']) throw new Error('redelivered with another webhook-id');
    delays.push(again.at - killed);
    await next.stop();
  }
} finally {
  await q.close();
  await rx.close();
  await redis.stop();
}
console.log(`sluice-webhooks ${ARGS.join(' ') || '(defaults)'}: in-flight delivery redelivered ${delays.map((d) => `${(d / 1000).toFixed(1)} s`).join(', ')} after kill -9`);
