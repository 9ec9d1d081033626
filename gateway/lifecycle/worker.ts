import { parseConfig } from '../config/load.js';
import { startGateway } from '../server.js';
import { isMessage, STARTING_BEAT_MS, type ToPrimary, type ToWorker } from './messages.js';

function send(msg: ToPrimary): void {
  process.send?.(msg);
}

/**
 * A cluster worker: one gateway with its own pools and store connection, built from the
 * config text the primary validated. It drains when the primary says so (reload, stop),
 * on SIGTERM/SIGINT (a terminal's ^C reaches the whole process group), or when the
 * primary disappears.
 */
export async function runWorker(): Promise<void> {
  // Until ready, this worker tells the primary it is alive (waits on the store run to seconds).
  const alive = setInterval(() => send({ type: 'sluice:starting' }), STARTING_BEAT_MS);
  try {
    await start();
  } finally {
    clearInterval(alive);
  }
}

async function start(): Promise<void> {
  // Asked for once listening: a message sent before this process has a listener is lost.
  // What may come before the config: a drain (the primary retired this worker while it
  // was starting: a reload or a stop on a slow machine), and then it goes at once; a
  // metrics request, which goes unanswered (the primary's scrape does not wait for it).
  const first = new Promise<Extract<ToWorker, { type: 'sluice:config' | 'sluice:drain' }>>((resolve) => {
    const onMessage = (m: unknown): void => {
      if (!isMessage<Extract<ToWorker, { type: 'sluice:config' }>>(m, 'sluice:config') && !isMessage<Extract<ToWorker, { type: 'sluice:drain' }>>(m, 'sluice:drain')) return;
      process.off('message', onMessage);
      resolve(m);
    };
    process.on('message', onMessage);
  });
  send({ type: 'sluice:want-config' });
  const msg = await first;
  if (msg.type === 'sluice:drain') process.exit(0);
  const cfg = parseConfig(msg.text);
  const gw = await startGateway(cfg, { worker: true });

  let draining = false;
  const drain = async (idleGraceMs: number): Promise<void> => {
    if (draining) return;
    draining = true;
    gw.log.info('worker draining');
    await gw.close(cfg.server.drain_timeout_ms, idleGraceMs);
    process.exit(0);
  };
  process.on('message', (m: unknown) => {
    if (isMessage<Extract<ToWorker, { type: 'sluice:drain' }>>(m, 'sluice:drain')) void drain(m.idleGraceMs);
    if (isMessage<Extract<ToWorker, { type: 'sluice:metrics' }>>(m, 'sluice:metrics')) {
      void gw.registry.getMetricsAsJSON().then((metrics) => send({ type: 'sluice:metrics', id: m.id, metrics }));
    }
  });
  process.on('SIGTERM', () => void drain(0));
  process.on('SIGINT', () => void drain(0));
  process.on('disconnect', () => void drain(0));
  send({ type: 'sluice:ready', port: gw.port, listeners: gw.listeners, adminPort: gw.adminPort });
}
