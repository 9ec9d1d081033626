import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/**
 * How long each file took on its last run on this machine, so the next run starts the
 * slowest first (the run then ends with short files filling the gaps, not with one long
 * file running alone). Kept outside the checkout: `npm test` cleans dist/ first.
 */
const FILE = join(tmpdir(), 'sluice-test-times', 'times.json');

export type Times = Readonly<Record<string, number>>;

export function readTimes(): Times {
  try { return JSON.parse(readFileSync(FILE, 'utf8')) as Times; } catch { return {}; }
}

/** Merges `ms` by file into the stored times (several checkouts on one machine share them). */
export function writeTimes(ms: Times): void {
  const merged = { ...readTimes(), ...ms };
  mkdirSync(dirname(FILE), { recursive: true });
  const tmp = `${FILE}.${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(merged, null, 1)}\n`);
  renameSync(tmp, FILE);
}
