// `npm test`: every compiled *.test.js under dist/, each file in a process of its own, several
// at once, the slowest (by their last run) first; then the few files that must run alone
// (runner/serial.ts). Ends with every file's wall and CPU time, slowest first.
//   node dist/test/run-tests.js [substring ...] [--jobs N]
// Env: SLUICE_TEST_JOBS (files at once), SLUICE_TEST_VERBOSE=1 (every file's output, not
// only the failing ones'), SLUICE_TEST_FILE_TIMEOUT_S (a file's limit, default 600).
import { readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { requireSupportedNode } from '../common/runtime.js';
import { readTimes, writeTimes } from './runner/history.js';
import { inPool } from './runner/pool.js';
import { formatBlock, portBlocks, PORTS_ENV } from './runner/port-blocks.js';
import { progressLine, summary, timesTable } from './runner/report.js';
import { runFile, type FileResult } from './runner/run-file.js';
import { SERIAL } from './runner/serial.js';
import { ensureSystemPackages } from './runner/system-packages.js';

// The suite runs on the pinned runtime (npm puts node_modules/.bin first on the PATH).
requireSupportedNode('npm test');

const dist = fileURLToPath(new URL('../', import.meta.url));
const root = fileURLToPath(new URL('../../', import.meta.url));
ensureSystemPackages(root);

const { values, positionals } = parseArgs({ allowPositionals: true, options: { jobs: { type: 'string' } } });
/**
 * Files at once. Most files wait on processes, sockets and timers, not on the CPU, so a
 * 2-core machine runs twice its cores well; see docs/testing.md for the measurements.
 */
const jobs = Number(values.jobs ?? process.env.SLUICE_TEST_JOBS ?? Math.max(2, availableParallelism() * 2));
if (!Number.isInteger(jobs) || jobs < 1) throw new Error(`--jobs must be a whole number >= 1, not ${values.jobs ?? process.env.SLUICE_TEST_JOBS}`);
const timeoutMs = Number(process.env.SLUICE_TEST_FILE_TIMEOUT_S ?? 600) * 1000;
const verbose = process.env.SLUICE_TEST_VERBOSE === '1';

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : testFiles(p);
    return e.name.endsWith('.test.js') ? [p] : [];
  });
}

const name = (file: string): string => relative(dist, file);
const all = testFiles(dist).sort();
const chosen = positionals.length === 0 ? all : all.filter((f) => positionals.some((s) => name(f).includes(s)));
if (chosen.length === 0) {
  process.stderr.write(`no test file matches ${positionals.map((s) => JSON.stringify(s)).join(' or ')}\n`);
  process.exit(2);
}

const alone = new Set(SERIAL.map((s) => `${s.file}.js`));
const prior = readTimes();
// Slowest first; a file never timed counts as slow, so a new long file does not start last.
const slowestFirst = (files: readonly string[]): string[] => [...files].sort((a, b) => (prior[name(b)] ?? Infinity) - (prior[name(a)] ?? Infinity) || a.localeCompare(b));
const parallel = slowestFirst(chosen.filter((f) => !alone.has(name(f))));
const serial = chosen.filter((f) => alone.has(name(f)));

const interrupt = new AbortController();
// The first signal stops the files running (with whatever they started) and starts no more.
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => interrupt.abort());
const blocks = portBlocks(jobs);
const run = (file: string, slot: number): Promise<FileResult> => runFile(file, {
  env: { ...process.env, [PORTS_ENV]: formatBlock(blocks[slot]!) }, timeoutMs, signal: interrupt.signal,
}).then((r) => {
  process.stdout.write(verbose || !r.ok ? `\n--- ${name(file)}\n${r.output}\n` : '');
  process.stdout.write(progressLine(r, name(file)));
  return r;
});

const started = performance.now();
process.stdout.write(`${parallel.length} files, ${jobs} at once${serial.length > 0 ? `; then ${serial.length} alone` : ''}\n`);
const results = await inPool(parallel, jobs, run, interrupt.signal);
for (const s of SERIAL.filter((e) => serial.includes(join(dist, `${e.file}.js`)))) {
  if (interrupt.signal.aborted) break;
  process.stdout.write(`alone: ${s.file} (${s.why})\n`);
  results.push(await run(join(dist, `${s.file}.js`), 0));
}
const wallMs = performance.now() - started;
if (!interrupt.signal.aborted) writeTimes(Object.fromEntries(results.map((r) => [name(r.file), Math.round(r.ms)])));
process.stdout.write(`\n${timesTable(results, name)}\n\n${summary(results, wallMs, name)}\n`);
process.exitCode = results.every((r) => r.ok) && results.length === chosen.length ? 0 : 1;
