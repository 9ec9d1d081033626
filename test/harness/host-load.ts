import { readFileSync } from 'node:fs';

/** Busy and total CPU time over all cores, in clock ticks, from /proc/stat. */
function cpuTicks(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal ...: idle and iowait are the idle ones.
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3]! - (f[4] ?? 0), total };
}

/**
 * How busy the machine is without this test: the share of CPU time in use over `ms`
 * while the test does nothing (0..1). A promise that holds only on a quiet host ("the
 * store decides every request") is judged only when this is low; the suite's other
 * files and other users of a shared machine make it high.
 */
export async function idleHostLoad(ms = 1000): Promise<number> {
  const a = cpuTicks();
  await new Promise((r) => setTimeout(r, ms));
  const b = cpuTicks();
  return b.total === a.total ? 0 : (b.busy - a.busy) / (b.total - a.total);
}

/** Below this share of CPU in use by others, the host counts as quiet. */
export const QUIET_HOST_LOAD = 0.25;
