// `sluice import-nginx FILE [--out OUT.yaml] [--report REPORT.json] [--upstream-policy nginx|sluice]
// [--allow-unenforced] [--verify]`: the YAML goes to --out (or stdout), the report to
// stderr (and as JSON, report.schema.json, to --report). Exit codes: 0 written and
// nothing to worry about; 1 the nginx config does not parse, has no server, or the
// result is refused by the loader; 2 bad usage; 3 written, but Lua handlers are NOT
// ENFORCED (0 with --allow-unenforced); 4 written, but --verify found differences the
// report does not list (or could not run).

import { writeFileSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, parseConfig } from '../config/load.js';
import { buildImport, type UpstreamPolicy } from './build.js';
import { Context } from './context.js';
import type { ImportResult } from './result.js';
import { toSluiceYaml } from './emit.js';
import { formatReport } from './format.js';
import { NginxParseError, parseNginxFile } from './parse.js';
import { readTree } from './read-tree.js';
import { publishedReportSchema } from './report-schema.js';
import type { ImportReport } from './report.js';
import { stringify } from 'yaml';
import { IMPORT_USAGE } from './usage.js';

export { formatReport };

export interface ImportOptions {
  readonly upstreamPolicy?: UpstreamPolicy;
}

/** Where a relative include missing beside the config is looked for: nginx's own prefix. */
const NGINX_PREFIX = '/etc/nginx';

/**
 * Reads, converts and checks. Report paths are relative to the main file's directory
 * (nginx's conf prefix), so `conf.d/api.conf:3` reads the same wherever the tree sits.
 * Throws NginxParseError, or ImportError when the result would not be a usable config.
 */
export function importNginx(file: string, opts: ImportOptions = {}): ImportResult {
  const main = resolve(file);
  const base = dirname(main);
  const relFile = (f: string): string => {
    const r = relative(base, f);
    return r.startsWith('..') || isAbsolute(r) ? f : r;
  };
  const cx = new Context(relFile, base);
  const tree = parseNginxFile(main, { missingIncludes: 'keep', fallbackPrefix: NGINX_PREFIX });
  const root = readTree(tree, cx);
  const imported = buildImport(root, cx, file, opts.upstreamPolicy ?? 'nginx');
  const report = imported.report;
  if ((imported.config.virtual_hosts as unknown[]).length === 0) {
    throw new ImportError(['nothing to route: the config has no http server'], report);
  }
  const yaml = toSluiceYaml(imported, file);
  // The promise is a config `sluice --check` accepts; check it here rather than hand the
  // operator a file that fails later. Placeholders are not expanded (empty env).
  // Certificates are the one exception: they live where Sluice will run, often not where
  // the import runs. Their absence is reported, and the rest is checked without them.
  const errors = loaderErrors(yaml);
  const certErrors = errors.filter((e) => CERT_UNREADABLE.test(e));
  if (errors.length > certErrors.length) throw new ImportError(errors.map((e) => `imported config rejected by the loader: ${e}`), report);
  if (certErrors.length > 0) {
    const withoutTls = structuredClone(imported.config) as { listeners: Record<string, unknown>[] };
    for (const l of withoutTls.listeners) delete l.tls;
    const rest = loaderErrors(stringify(withoutTls));
    if (rest.length > 0) throw new ImportError(rest.map((e) => `imported config rejected by the loader: ${e}`), report);
    // Each missing file is already listed at its ssl_certificate(_key) line (build.ts).
  }
  return { yaml, imported, report, tree, root, context: cx };
}

const CERT_UNREADABLE = /^listeners\[\d+\]\.tls\.certificates\[\d+\]\.(cert|key): cannot read /;

function loaderErrors(yaml: string): string[] {
  try {
    parseConfig(yaml, {});
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return [...err.errors];
    throw err;
  }
}

export class ImportError extends Error {
  constructor(readonly errors: readonly string[], readonly report: ImportReport) {
    super(errors.join('\n'));
  }
}

interface Cli { file: string; out: string | undefined; reportFile: string | undefined; policy: UpstreamPolicy; allowUnenforced: boolean; verify: boolean }

function parseCli(argv: readonly string[]): Cli | string {
  try {
    const { values, positionals } = parseArgs({
      args: [...argv], allowPositionals: true,
      options: { out: { type: 'string' }, report: { type: 'string' }, 'upstream-policy': { type: 'string' }, 'allow-unenforced': { type: 'boolean' }, verify: { type: 'boolean' } },
    });
    if (positionals.length > 1) return `unexpected ${JSON.stringify(positionals[1])}`;
    if (positionals[0] === undefined) return 'needs the nginx config FILE';
    const policy = values['upstream-policy'] ?? 'nginx';
    if (policy !== 'nginx' && policy !== 'sluice') return '--upstream-policy: expected nginx or sluice';
    return { file: positionals[0], out: values.out, reportFile: values.report, policy, allowUnenforced: values['allow-unenforced'] === true, verify: values.verify === true };
  } catch (err) {
    return (err as Error).message;
  }
}

export async function runImportNginx(argv: readonly string[]): Promise<number> {
  if (argv.length === 1 && argv[0] === '--report-schema') {
    process.stdout.write(`${JSON.stringify(publishedReportSchema(), null, 2)}\n`);
    return 0;
  }
  const cli = parseCli(argv);
  if (typeof cli === 'string') {
    process.stderr.write(`import-nginx: ${cli}\nusage:\n${IMPORT_USAGE}\n`);
    return 2;
  }
  const { file, out, reportFile } = cli;
  const writeReport = (r: ImportReport, errors: readonly string[]): void => {
    if (reportFile !== undefined) writeFileSync(reportFile, `${JSON.stringify({ ...r, errors }, null, 2)}\n`);
  };
  let res: ImportResult;
  try {
    res = importNginx(file, { upstreamPolicy: cli.policy });
  } catch (err) {
    if (err instanceof NginxParseError) {
      const r = resolve(err.file);
      const base = dirname(resolve(file));
      const shown = relative(base, r).startsWith('..') ? r : relative(base, r);
      const msg = `${shown}${err.line > 0 ? `:${err.line}` : ''}: ${err.reason}`;
      process.stderr.write(`import-nginx: parse error: ${msg}\n`);
      writeReport(emptyReport(file, cli.policy), [msg]);
      return 1;
    }
    if (err instanceof ImportError) {
      process.stderr.write(formatReport(err.report));
      process.stderr.write(err.errors.map((e) => `import-nginx: error: ${e}\n`).join(''));
      writeReport(err.report, err.errors);
      return 1;
    }
    throw err;
  }
  if (out === undefined) process.stdout.write(res.yaml);
  else writeFileSync(out, res.yaml);
  let report = res.report;
  let verifyFailed = false;
  if (cli.verify) {
    const { verifyImport } = await import('./verify/verify.js');
    const v = await verifyImport(res);
    report = { ...report, counts: { ...report.counts, verified: v.summary?.same ?? 0 }, verify: v.summary, errors: v.errors };
    verifyFailed = v.errors.length > 0 || (v.summary?.unlisted_differences ?? 1) > 0;
  }
  process.stderr.write(formatReport(report));
  writeReport(report, report.errors);
  if (report.not_enforced.length > 0 && !cli.allowUnenforced) {
    process.stderr.write(`import-nginx: ${report.not_enforced.length} Lua handler(s) NOT ENFORCED by the imported config (listed above); the config was written, and --allow-unenforced accepts this\n`);
    return 3;
  }
  return verifyFailed ? 4 : 0;
}

function emptyReport(source: string, policy: UpstreamPolicy): ImportReport {
  return {
    schema_version: 1, source, upstream_policy: policy,
    counts: { translated: 0, emulated: 0, listed: 0, not_enforced: 0, notes: 0, verified: null },
    translated: 0, untranslated: [], notes: [], not_enforced: [], servers: [], global: [], errors: [], verify: null,
  };
}
