// `sluice import-nginx FILE [--out OUT.yaml] [--report REPORT.json]`: the YAML goes to
// --out (or stdout), the report to stderr; exit 0 when a config was written (even with
// untranslated directives), 1 when the nginx config does not parse or nothing could be
// imported, 2 on bad usage.

import { writeFileSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, parseConfig } from '../config/load.js';
import { convert, type Imported, type ReportItem } from './convert.js';
import { toSluiceYaml } from './emit.js';
import { NginxParseError, parseNginxFile } from './parse.js';

export interface ImportReport {
  readonly source: string;
  readonly translated: number;
  readonly untranslated: readonly ReportItem[];
  readonly notes: readonly ReportItem[];
}

export interface ImportResult {
  readonly yaml: string;
  readonly imported: Imported;
  readonly report: ImportReport;
}

/**
 * Reads, converts and checks. Report paths are relative to the main file's directory
 * (nginx's conf prefix), so `conf.d/api.conf:3` reads the same wherever the tree sits.
 * Throws NginxParseError, or ImportError when the result would not be a usable config.
 */
export function importNginx(file: string): ImportResult {
  const main = resolve(file);
  const base = dirname(main);
  const relFile = (f: string): string => {
    const r = relative(base, f);
    return r.startsWith('..') || isAbsolute(r) ? f : r;
  };
  const imported = convert(parseNginxFile(main), relFile);
  const report: ImportReport = { source: file, translated: imported.translated, untranslated: imported.untranslated, notes: imported.notes };
  if (imported.routes.length === 0) {
    throw new ImportError(['nothing to route: no prefix location with a translatable proxy_pass'], report);
  }
  const yaml = toSluiceYaml(imported, file);
  // The promise is a config `sluice --check` accepts; check it here rather than hand the
  // operator a file that fails later. Placeholders are not expanded (empty env).
  try {
    parseConfig(yaml, {});
  } catch (err) {
    if (err instanceof ConfigError) throw new ImportError(err.errors.map((e) => `imported config rejected by the loader: ${e}`), report);
    throw err;
  }
  return { yaml, imported, report };
}

export class ImportError extends Error {
  constructor(readonly errors: readonly string[], readonly report: ImportReport) {
    super(errors.join('\n'));
  }
}

export function formatReport(r: ImportReport): string {
  const lines = [`import-nginx ${r.source}: ${r.translated} directives translated, ${r.untranslated.length} untranslated, ${r.notes.length} notes`];
  if (r.untranslated.length > 0) lines.push('untranslated:');
  for (const u of r.untranslated) lines.push(`  ${u.file}:${u.line}: ${u.directive} — ${u.reason}`);
  if (r.notes.length > 0) lines.push('notes:');
  for (const n of r.notes) lines.push(`  ${n.file}:${n.line}: ${n.directive} — ${n.reason}`);
  return `${lines.join('\n')}\n`;
}

export const IMPORT_USAGE = '  sluice import-nginx FILE [--out OUT.yaml] [--report REPORT.json]\n'
  + '                         convert an nginx config; untranslated directives are listed on stderr';

export function runImportNginx(argv: readonly string[]): number {
  let file: string | undefined;
  let out: string | undefined;
  let reportFile: string | undefined;
  try {
    const { values, positionals } = parseArgs({ args: [...argv], allowPositionals: true, options: { out: { type: 'string' }, report: { type: 'string' } } });
    if (positionals.length > 1) throw new Error(`unexpected ${JSON.stringify(positionals[1])}`);
    [file] = positionals;
    ({ out, report: reportFile } = values);
  } catch (err) {
    process.stderr.write(`import-nginx: ${(err as Error).message}\nusage:\n${IMPORT_USAGE}\n`);
    return 2;
  }
  if (file === undefined) { process.stderr.write(`usage:\n${IMPORT_USAGE}\n`); return 2; }
  const writeReport = (r: ImportReport, errors: readonly string[]): void => {
    if (reportFile !== undefined) writeFileSync(reportFile, `${JSON.stringify({ ...r, errors }, null, 2)}\n`);
  };
  let res: ImportResult;
  try {
    res = importNginx(file);
  } catch (err) {
    if (err instanceof NginxParseError) {
      const r = resolve(err.file);
      const base = dirname(resolve(file));
      const shown = relative(base, r).startsWith('..') ? r : relative(base, r);
      const msg = `${shown}${err.line > 0 ? `:${err.line}` : ''}: ${err.reason}`;
      process.stderr.write(`import-nginx: parse error: ${msg}\n`);
      writeReport({ source: file, translated: 0, untranslated: [], notes: [] }, [msg]);
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
  process.stderr.write(formatReport(res.report));
  writeReport(res.report, []);
  return 0;
}
