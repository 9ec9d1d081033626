#!/usr/bin/env node
// sluice-backend: one image backend process. See backends/README.md.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../common/errors.js';
import { parseBackendConfig, usage, type BackendConfig } from './service/config.js';
import { tuning } from './service/tuning.js';
import { requireSupportedNode } from '../common/runtime.js';

requireSupportedNode('sluice-backend');

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(usage());
  process.exit(0);
}
let cfg: BackendConfig;
try {
  cfg = parseBackendConfig(args, process.env);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`sluice-backend: ${err.message}\n`);
  process.exit(2);
}

const tune = tuning(cfg, process.env);
if (cfg.reexec && tune.reexecNeeded && process.env.SLUICE_BACKEND_CHILD !== '1') {
  // The allocator, the libuv pool size and V8's heap sizes are fixed at process start (see tuning.ts):
  // run the real backend as a child with them set, and mirror its lifetime. sharp is
  // never loaded in this launcher.
  const script = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, [...process.execArgv, ...tune.execArgv, script, ...args], {
    env: { ...tune.env, SLUICE_BACKEND_CHILD: '1' },
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => { child.kill(sig); });
  }
  child.on('exit', (code, signal) => {
    process.exit(code ?? (signal === null ? 1 : 128 + (signal === 'SIGKILL' ? 9 : signal === 'SIGINT' ? 2 : 15)));
  });
  child.on('error', (err) => {
    process.stderr.write(`sluice-backend: cannot start the backend: ${err.message}\n`);
    process.exit(1);
  });
} else {
  const { runBackend } = await import('./service/main.js');
  await runBackend(cfg, tune).catch((err: unknown) => {
    process.stderr.write(`sluice-backend: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
