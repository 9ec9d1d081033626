import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/load.js';
import { EXIT_USAGE } from './gates.js';
import type { AdminTarget } from './keys.js';
import { readBaseline, runLoadtest, UsageError, type RunOptions } from './run.js';
import { loadScenario } from './scenario.js';
import { scenarioJsonSchema } from './scenario-schema.js';
import { summaryText } from './summary.js';
import { LOADTEST_USAGE } from './usage.js';

function compareTarget(v: string, token: string | undefined): { url: string; admin: AdminTarget | undefined } {
  const [url, ...opts] = v.split(',');
  let admin: AdminTarget | undefined;
  for (const o of opts) {
    const m = /^admin=(.+)$/.exec(o);
    if (m === null) throw new UsageError(`--compare ${v}: expected URL or URL,admin=URL`);
    if (token === undefined) throw new UsageError(`--compare ${v}: admin=URL needs an admin token (scenario admin.token or --admin-token)`);
    admin = { url: m[1]!, token };
  }
  try { new URL(url!); } catch { throw new UsageError(`--compare ${v}: not a URL, and no such result.json`); }
  return { url: url!, admin };
}

export async function runLoadtestCli(argv: readonly string[]): Promise<number> {
  let opts: RunOptions;
  let quiet: boolean;
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        target: { type: 'string' },
        admin: { type: 'string' },
        'admin-token': { type: 'string' },
        out: { type: 'string' },
        redis: { type: 'string' },
        compare: { type: 'string', multiple: true },
        assert: { type: 'string', multiple: true },
        'gateway-pid': { type: 'string', multiple: true },
        quiet: { type: 'boolean', default: false },
        schema: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    if (values.help) { process.stdout.write(`usage:\n${LOADTEST_USAGE}\n`); return 0; }
    if (values.schema) {
      if (positionals.length > 0) throw new UsageError('--schema takes no scenario file');
      process.stdout.write(`${JSON.stringify(scenarioJsonSchema(), null, 2)}\n`);
      return 0;
    }
    if (positionals.length !== 1) throw new UsageError('expected exactly one scenario file');
    quiet = values.quiet === true;
    const scenario = loadScenario(positionals[0]!);
    const token = values['admin-token'] ?? scenario.admin?.token;
    const adminUrl = values.admin ?? scenario.admin?.url;
    const main = { url: values.target ?? scenario.target, admin: adminUrl === undefined || token === undefined ? undefined : { url: adminUrl, token } };
    const targets = [main];
    let baseline: RunOptions['baseline'];
    for (const c of values.compare ?? []) {
      if (c.endsWith('.json') || existsSync(c)) {
        if (baseline !== undefined) throw new UsageError('--compare: at most one saved result.json');
        baseline = readBaseline(c);
      } else {
        targets.push(compareTarget(c, token));
      }
    }
    const pids = (values['gateway-pid'] ?? []).map((p) => {
      if (!/^[1-9][0-9]*$/.test(p)) throw new UsageError(`--gateway-pid ${p}: expected a process id`);
      return Number(p);
    });
    opts = {
      scenario, targets, baseline, outDir: values.out, redisUrl: values.redis, asserts: values.assert ?? [],
      gatewayPids: pids.length > 0 ? pids : undefined, progress: quiet ? null : process.stderr,
    };
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`scenario: ${err.errors.length} error(s)\n${err.errors.map((e) => `  ${e}`).join('\n')}\n`);
      return EXIT_USAGE;
    }
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`sluice loadtest: ${(err as Error).message}\nusage:\n${LOADTEST_USAGE}\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
  try {
    const result = await runLoadtest(opts);
    process.stdout.write(summaryText(result));
    if (opts.outDir !== undefined && !quiet) process.stdout.write(`wrote ${opts.outDir}/result.json and ${opts.outDir}/report.html\n`);
    return result.exitCode;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`sluice loadtest: ${err.message}\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
}
