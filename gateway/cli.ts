#!/usr/bin/env node
// `sluice`: which command runs. Each command's modules load only when it runs (`sluice
// admin` or `--check` need none of the proxy), so a command line starts in a fraction of
// the time the whole gateway takes to load.
import { parseArgs } from 'node:util';
import cluster from 'node:cluster';
import { readConfigText } from '../common/config-text.js';
import { ConfigError } from '../common/errors.js';
import { requireSupportedNode } from '../common/runtime.js';
import { ADMIN_USAGE } from './admin-cli/usage.js';
import { CONFIG_USAGE } from './config/usage.js';
import type { SluiceConfig } from './config/types.js';
import { IMPORT_USAGE } from './import-nginx/usage.js';
import { LOADTEST_USAGE } from './loadtest/usage.js';

const USAGE = `usage:
  sluice --config FILE [--workers N]
                         run the gateway (and the backends the config spawns); N workers
                         share the port (default: one per core, or 1 with the memory store)
  sluice --check FILE    validate a config and print every error with its field path
${CONFIG_USAGE}
${IMPORT_USAGE}
${LOADTEST_USAGE}
${ADMIN_USAGE}`;

interface Args { readonly mode: 'config' | 'check'; readonly file: string; readonly workers: number | undefined }

/** The gateway's own flags; a mistake is a message for stderr (exit 2), `--help` is undefined (exit 0). */
function parseGatewayArgs(argv: string[]): Args | { readonly error: string } | undefined {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { config: { type: 'string' }, check: { type: 'string' }, workers: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (err) {
    return { error: (err as Error).message };
  }
  if (values.help === true) return undefined;
  if (values.config !== undefined && values.check !== undefined) return { error: 'give --config or --check, not both' };
  const file = values.config ?? values.check;
  if (file === undefined) return { error: 'needs --config FILE or --check FILE' };
  const w = values.workers;
  if (w !== undefined && !/^[1-9][0-9]{0,2}$/.test(w)) return { error: '--workers: expected a whole number from 1 to 999' };
  return { mode: values.config === undefined ? 'check' : 'config', file, workers: w === undefined ? undefined : Number(w) };
}

async function main(argv: string[]): Promise<number> {
  if (cluster.isWorker) {
    await (await import('./lifecycle/worker.js')).runWorker();
    return new Promise<number>(() => {});
  }
  if (argv[0] === 'import-nginx') return (await import('./import-nginx/import.js')).runImportNginx(argv.slice(1));
  if (argv[0] === 'loadtest') return (await import('./loadtest/cli.js')).runLoadtestCli(argv.slice(1));
  if (argv[0] === 'admin') return (await import('./admin-cli/main.js')).runAdmin(argv.slice(1));
  if (argv[0] === 'config') return (await import('./config/config-command.js')).runConfigCommand(argv.slice(1));
  const args = parseGatewayArgs(argv);
  if (args === undefined || 'error' in args) {
    process.stderr.write(`${args === undefined ? '' : `sluice: ${args.error}\n`}${USAGE}\n`);
    return args === undefined ? 0 : 2;
  }
  const { mode, file, workers: workersFlag } = args;
  const { parseConfig } = await import('./config/load.js');
  let cfg: SluiceConfig;
  let text: string;
  try {
    text = readConfigText(file);
    cfg = parseConfig(text);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${file}: ${err.errors.length} error(s)\n${err.errors.map((e) => `  ${e}`).join('\n')}\n`);
    return 1;
  }
  if (mode === 'check') {
    const { everyRoute } = await import('./route/resolve.js');
    process.stdout.write(`${file}: ok (${everyRoute(cfg).length} routes, ${cfg.upstreams.size} upstreams, ${cfg.plans.size} plans, store ${cfg.store.kind})\n`);
    return 0;
  }
  const { chooseWorkers } = await import('./lifecycle/config-file.js');
  const chosen = chooseWorkers(cfg, workersFlag);
  if ('error' in chosen) {
    process.stderr.write(`${file}: ${chosen.error}\n`);
    return 1;
  }
  return (await import('./lifecycle/run-stack.js')).runStack(file, text, cfg, chosen.workers, chosen.note);
}

requireSupportedNode('sluice');
main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err: unknown) => {
  process.stderr.write(`sluice: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
