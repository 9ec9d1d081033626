import { readFileSync } from 'node:fs';

/**
 * CPU time a process has used so far (user + system, in clock ticks), from Linux's
 * /proc/PID/stat; undefined elsewhere or once the process is gone. The primary reads it
 * to tell a worker busy loading from one that is stopped.
 */
export function cpuTicks(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces and parentheses): state is the 3rd field, utime the 14th, stime the 15th.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return undefined;
  }
}
