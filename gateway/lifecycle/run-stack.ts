// `sluice --config FILE`: the stack one command runs. The backends the config spawns (the
// demo stack's), the webhook keys they share, the gateway in this process or as a cluster
// primary with its workers, and the signals that reload and stop all of it.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { MASTER_KEY_ENV, newMasterKeyText } from '../../common/webhook-keys/master-key.js';
import type { SluiceConfig } from '../config/types.js';
import { createLogger } from '../observe/logger.js';
import { startGateway } from '../server.js';
import { rereadConfig } from './config-file.js';
import { startPrimary } from './primary.js';

// How long the demo stack waits for its backends (they load sharp and the face model):
// a start beside a busy machine's other work has taken over 30 s.
const SPAWNED_BACKEND_START_MS = 120_000;

/** Runs until a signal stops it (the promise never settles; SIGINT/SIGTERM exit the process). */
export async function runStack(file: string, text: string, cfg: SluiceConfig, workers: number, note: string | undefined): Promise<number> {
  // The spawned backends share one results directory, so a result URL works whichever
  // backend the gateway's balancer sends the download to.
  const resultsDir = process.env.SLUICE_BACKEND_RESULTS_DIR
    ?? (cfg.spawn_backends.length > 0 ? mkdtempSync(join(tmpdir(), 'sluice-results-')) : undefined);
  // Started once, here: in a cluster the workers share them like any other upstream.
  const log = createLogger(cfg.log);
  const keysDir = prepareWebhookKeys(cfg, log);
  const children = cfg.spawn_backends.map((b) => spawnBackend(b.port, resultsDir!, file, cfg));
  let stopping = false;
  for (const c of children) {
    c.on('exit', (code, signal) => {
      if (!stopping) log.error({ pid: c.pid, code, signal }, 'a spawned backend exited');
    });
  }
  if (note !== undefined) log.info({ workers }, note);
  // Listening before the backends do would answer the first requests 502 and get the
  // backends ejected as outliers for their first 30 s.
  await Promise.all(children.map((c, i) => backendListening(c, cfg.spawn_backends[i]!.port, log)));
  const gateway = workers === 1 ? await singleProcess(file, cfg, log) : await startPrimary(file, text, cfg, workers, log);

  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping: draining in-flight requests');
    // The gateway drains first: its in-flight requests still need the backends.
    await gateway.stop();
    for (const c of children) c.kill('SIGTERM');
    await Promise.all(children.filter((c) => c.exitCode === null && c.signalCode === null).map((c) => once(c, 'exit')));
    // Results live an hour at most, and never past the stack that made them.
    if (resultsDir !== undefined && process.env.SLUICE_BACKEND_RESULTS_DIR === undefined) rmSync(resultsDir, { recursive: true, force: true });
    // Sealed under a master key that dies with this run: useless after it.
    if (keysDir !== undefined) rmSync(keysDir, { recursive: true, force: true });
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGHUP', () => {
    if (stopping) return;
    log.info({ file }, 'SIGHUP: reloading the config');
    void gateway.reload();
  });
  return new Promise<number>(() => {});
}

/** `--workers 1`: the gateway in this process; a reload swaps the request path in place. */
async function singleProcess(file: string, cfg: SluiceConfig, log: Logger): Promise<{ reload(): Promise<void>; stop(): Promise<void> }> {
  const gw = await startGateway(cfg, { log });
  let reloading = Promise.resolve();
  return {
    reload() {
      reloading = reloading.then(async () => {
        const next = rereadConfig(file, log, 1);
        if (next === undefined) return;
        const needRestart = await gw.reload(next.cfg);
        log.info({ needs_restart: needRestart }, needRestart.length === 0 ? 'reload done' : 'reload done; some changes apply only after a restart');
      }).catch((err: unknown) => log.error({ err: (err as Error).stack }, 'reload failed; the running config stays in force'));
      return reloading;
    },
    stop: () => gw.close(),
  };
}

/**
 * The memory-store stack keeps customers' webhook keys in a directory it shares with the
 * backends it starts (SLUICE_WEBHOOK_KEYS_DIR, made here when not given), sealed under
 * SLUICE_MASTER_KEY. So that `npm start` signs webhooks with no secret set by hand, a
 * missing master key is generated for this run, said loudly: its keys do not outlive the
 * run, which is what a memory store promises anyway. Returns the directory made here
 * (removed at stop). A Redis store gets no generated key: it keeps keys across restarts.
 */
function prepareWebhookKeys(cfg: SluiceConfig, log: Logger): string | undefined {
  if (cfg.store.kind !== 'memory') return undefined;
  if ((process.env[MASTER_KEY_ENV] ?? '') === '') {
    process.env[MASTER_KEY_ENV] = newMasterKeyText();
    log.warn(`${MASTER_KEY_ENV} is not set: generated a DEVELOPMENT master key for this run only. Customers' webhook keys will change at the next start. `
      + `In production set ${MASTER_KEY_ENV} (openssl rand -base64 32) and use a redis store (docs/security.md).`);
  }
  if (cfg.webhooks.keys_dir !== undefined) {
    process.env.SLUICE_WEBHOOK_KEYS_DIR = cfg.webhooks.keys_dir;
    return undefined;
  }
  if (process.env.SLUICE_WEBHOOK_KEYS_DIR !== undefined) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-webhook-keys-'));
  process.env.SLUICE_WEBHOOK_KEYS_DIR = dir;
  return dir;
}

/** The demo stack: backends are this package's own `sluice-backend`, stopped with the gateway, signing webhooks with the gateway's keyring. */
function spawnBackend(port: number, resultsDir: string, configFile: string, cfg: SluiceConfig): ChildProcess {
  const script = fileURLToPath(new URL('../../backends/cli.js', import.meta.url));
  const keyring = cfg.store.kind === 'memory'
    ? { SLUICE_BACKEND_WEBHOOK_KEYS_DIR: process.env.SLUICE_WEBHOOK_KEYS_DIR }
    : { SLUICE_BACKEND_WEBHOOK_KEYS_STORE: configFile };
  return spawn(process.execPath, [script, '--port', String(port)], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...keyring, ...process.env, SLUICE_BACKEND_RESULTS_DIR: resultsDir },
  });
}

/** Resolves once the spawned backend accepts connections on its port, or once it is clearly not going to. */
async function backendListening(child: ChildProcess, port: number, log: Logger): Promise<void> {
  const deadline = Date.now() + SPAWNED_BACKEND_START_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) return; // its exit is logged; the gateway still starts
    const open = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  log.warn({ port, waited_ms: SPAWNED_BACKEND_START_MS }, 'a spawned backend is not listening yet; starting the gateway anyway');
}
