import type { FileResult } from './run-file.js';

const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

const cpu = (r: FileResult): string => (r.cpuMs === undefined ? '—' : secs(r.cpuMs)).padStart(8);

/** One line as a file ends, so a long run shows progress. */
export function progressLine(r: FileResult, name: string): string {
  const tally = `${r.counts.pass}/${r.counts.tests} passed${r.counts.skipped > 0 ? `, ${r.counts.skipped} skipped` : ''}`;
  return `${r.ok ? 'ok  ' : 'FAIL'} ${secs(r.ms).padStart(8)} ${cpu(r)} cpu  ${name}  (${tally})${r.notes.length > 0 ? `  [${r.notes.join('; ')}]` : ''}\n`;
}

/**
 * Every file's wall time, slowest first, with the CPU it and its processes used: the next
 * slow file is the first line, and the CPU column shows which files a 2-core run waits on.
 */
export function timesTable(results: readonly FileResult[], name: (file: string) => string): string {
  const sorted = [...results].sort((a, b) => b.ms - a.ms);
  return ['per-file times, slowest first:', '    wall       cpu  file', ...sorted.map((r) => `${secs(r.ms).padStart(8)}  ${cpu(r)}  ${name(r.file)}${r.ok ? '' : '  FAILED'}`)].join('\n');
}

/** The run's totals: tests by outcome over all files, the files that failed, the wall time. */
export function summary(results: readonly FileResult[], wallMs: number, name: (file: string) => string): string {
  const sum = (k: keyof FileResult['counts']): number => results.reduce((n, r) => n + r.counts[k], 0);
  const failed = results.filter((r) => !r.ok);
  return [
    `files ${results.length}, failed ${failed.length}; tests ${sum('tests')}: pass ${sum('pass')}, fail ${sum('fail')}, cancelled ${sum('cancelled')}, skipped ${sum('skipped')}, todo ${sum('todo')}`,
    ...failed.map((r) => `failed: ${name(r.file)}${r.notes.length > 0 ? ` (${r.notes.join('; ')})` : ''}`),
    `wall time ${secs(wallMs)}; CPU ${secs(results.reduce((n, r) => n + (r.cpuMs ?? 0), 0))} in the files and the processes they waited for`,
  ].join('\n');
}
