import { readFileSync, writeFileSync } from 'node:fs';

// Loaded into each test file's process (`node --import`, test/runner/run-file.ts). As the
// process exits it writes the CPU it used, with that of every process it started and waited
// for (gateways, redis-servers, nginx: Linux adds a reaped child's times to its parent's),
// in milliseconds, to the file the runner named. On a 2-core machine CPU, more than wall
// time, bounds the suite: this shows which file spends it.

/** /proc reports times in USER_HZ ticks, 100 a second on every Linux architecture. */
const TICK_MS = 10;

const out = process.env.SLUICE_TEST_CPU_FILE;
if (out !== undefined) {
  process.once('exit', () => {
    let stat: string;
    try { stat = readFileSync('/proc/self/stat', 'utf8'); } catch { return; } // not Linux: no CPU figure
    // After the last ')': state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    writeFileSync(out, String((Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * TICK_MS));
  });
}
