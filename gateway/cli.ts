#!/usr/bin/env node
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfigFile } from './config/load.js';
import type { SluiceConfig } from './config/types.js';
import { IMPORT_USAGE, runImportNginx } from './import-nginx/import.js';
import { startGateway } from './server.js';

const USAGE = `usage:
  sluice --config FILE   run the gateway (and the backends the config spawns)
  sluice --check FILE    validate a config and print every error with its field path
${IMPORT_USAGE}`;

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'import-nginx') return runImportNginx(argv.slice(1));
  const [flag, file] = argv;
  if ((flag !== '--config' && flag !== '--check') || file === undefined) {
    process.stderr.write(`${USAGE}\n`);
    return flag === '--help' || flag === '-h' ? 0 : 2;
  }
  let cfg: SluiceConfig;
  try {
    cfg = loadConfigFile(file);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${file}: ${err.errors.length} error(s)\n${err.errors.map((e) => `  ${e}`).join('\n')}\n`);
    return 1;
  }
  if (flag === '--check') {
    process.stdout.write(`${file}: ok (${cfg.routes.length} routes, ${cfg.upstreams.size} upstreams, ${cfg.plans.size} plans, store ${cfg.store.kind})\n`);
    return 0;
  }
  return run(cfg);
}

async function run(cfg: SluiceConfig): Promise<number> {
  // The spawned backends share one results directory, so a result URL works whichever
  // backend the gateway's balancer sends the download to.
  const resultsDir = process.env.SLUICE_BACKEND_RESULTS_DIR
    ?? (cfg.spawn_backends.length > 0 ? mkdtempSync(join(tmpdir(), 'sluice-results-')) : undefined);
  const children = cfg.spawn_backends.map((b) => spawnBackend(b.port, resultsDir!));
  const gw = await startGateway(cfg);
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    gw.log.info({ signal }, 'stopping');
    for (const c of children) c.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? once(c, 'exit') : undefined)));
    await gw.close();
    // Results live an hour at most, and never past the stack that made them.
    if (resultsDir !== undefined && process.env.SLUICE_BACKEND_RESULTS_DIR === undefined) rmSync(resultsDir, { recursive: true, force: true });
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  for (const c of children) {
    c.on('exit', (code, signal) => {
      if (!stopping) gw.log.error({ pid: c.pid, code, signal }, 'a spawned backend exited');
    });
  }
  return new Promise<number>(() => {});
}

/** The demo stack: backends are this package's own `sluice-backend`, stopped with the gateway. */
function spawnBackend(port: number, resultsDir: string): ChildProcess {
  const script = fileURLToPath(new URL('../backends/cli.js', import.meta.url));
  return spawn(process.execPath, [script, '--port', String(port)], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, SLUICE_BACKEND_RESULTS_DIR: resultsDir },
  });
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err: unknown) => {
  process.stderr.write(`sluice: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
