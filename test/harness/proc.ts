import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import type { GatewayProcess } from './gateway.js';

export interface MemoryStatus {
  /** Resident set size now, bytes. */
  readonly rss: number;
  /** Peak resident set size (since start, or since resetPeakRss), bytes. */
  readonly hwm: number;
}

/** VmRSS and VmHWM of a Linux process, from /proc/<pid>/status. */
export function memoryOf(pid: number): MemoryStatus {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
    if (m === null) throw new Error(`${field} missing from /proc/${pid}/status`);
    return Number(m[1]) * 1024;
  };
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/**
 * Resets the process's VmHWM to its current RSS (Linux >= 4.0, "5" to clear_refs).
 * Returns false when the kernel does not allow it; VmHWM is then the lifetime peak,
 * which is never lower than the peak of the interval being measured.
 */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/**
 * The gateway survived whatever the test did to it: the child is still running, it
 * printed nothing that looks like a crash or a warning to stderr, and no request ended
 * in the chain's catch-all (an exception inside a stage).
 */
export function assertGatewayHealthy(gw: GatewayProcess): void {
  assert.equal(gw.child.exitCode, null, `gateway exited with ${gw.child.exitCode}; stderr:\n${gw.stderr.join('\n')}`);
  assert.equal(gw.child.signalCode, null, `gateway killed by ${gw.child.signalCode}`);
  const bad = gw.stderr.filter((l) => /uncaught|unhandled|error|warning/i.test(l));
  assert.deepEqual(bad, [], `gateway stderr:\n${gw.stderr.join('\n')}`);
  const internal = gw.lines.filter((l) => l.msg === 'request failed inside the gateway' || l.error === 'internal_error');
  assert.deepEqual(internal, [], 'a request failed with an exception inside the gateway');
}
