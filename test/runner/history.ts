import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * How long each file took on its last run on this machine, so the next run starts the
 * slowest first (the run then ends with short files filling the gaps, not with one long
 * file running alone). Kept outside the checkout: `npm test` cleans dist/ first.
 */
const FILE = join(tmpdir(), 'sluice-test-times', 'times.json');
/**
 * A committed snapshot of those times (from a clean run on a 2-core machine), so a fresh
 * clone, CI's case, also starts the slowest first instead of in name order. Refresh it with
 * `cp $TMPDIR/sluice-test-times/times.json test/runner/file-times.json` after a full run.
 */
const COMMITTED = fileURLToPath(new URL('../../../test/runner/file-times.json', import.meta.url));

export type Times = Readonly<Record<string, number>>;

export function readTimes(): Times {
  return { ...readJson(COMMITTED), ...readJson(FILE) };
}

function readJson(file: string): Times {
  try { return JSON.parse(readFileSync(file, 'utf8')) as Times; } catch { return {}; }
}

/** Merges `ms` by file into the stored times (several checkouts on one machine share them). */
export function writeTimes(ms: Times): void {
  const merged = { ...readJson(FILE), ...ms };
  mkdirSync(dirname(FILE), { recursive: true });
  const tmp = `${FILE}.${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(merged, null, 1)}\n`);
  renameSync(tmp, FILE);
}
