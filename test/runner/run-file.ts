import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface FileResult {
  readonly file: string;
  readonly ok: boolean;
  readonly ms: number;
  /** CPU ms of the file's process and the processes it waited for (cpu-preload.ts); undefined where /proc is missing. */
  readonly cpuMs: number | undefined;
  /** The file's spec output and stderr, in order. */
  readonly output: string;
  /** node:test's own tally, from the spec reporter's summary lines. */
  readonly counts: Readonly<Record<'tests' | 'pass' | 'fail' | 'cancelled' | 'skipped' | 'todo', number>>;
  /** Why the runner stepped in: the file ran past its time, or left processes behind. */
  readonly notes: readonly string[];
}

export interface RunFileOptions {
  readonly env: NodeJS.ProcessEnv;
  readonly timeoutMs: number;
  /** When to stop it early (the run was interrupted). */
  readonly signal: AbortSignal;
}

const CPU_PRELOAD = fileURLToPath(new URL('./cpu-preload.js', import.meta.url));

const COUNTS = ['tests', 'pass', 'fail', 'cancelled', 'skipped', 'todo'] as const;

/**
 * Runs one test file in a process group of its own: `node --test` on just that file, in
 * that process (no second process per file). Whatever the file started and left running
 * (a redis-server, an nginx, a gateway) is in the group and dies with it when it ends, so a
 * file that fails half-way cannot leave a server behind to disturb the files after it.
 */
export function runFile(file: string, o: RunFileOptions): Promise<FileResult> {
  const started = performance.now();
  const cpuDir = mkdtempSync(join(tmpdir(), 'sluice-test-cpu-'));
  const cpuFile = join(cpuDir, 'ms');
  // --test-force-exit: a file whose tests are done exits even if something it used left a
  // handle open (a client library's timer, say), instead of holding the run until CI's limit.
  const child = spawn(process.execPath, ['--import', CPU_PRELOAD, '--test', '--test-isolation=none', '--test-force-exit', '--test-reporter=spec', file], {
    env: { ...o.env, SLUICE_TEST_CPU_FILE: cpuFile }, stdio: ['ignore', 'pipe', 'pipe'], detached: true,
  });
  const chunks: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => chunks.push(c));
  child.stderr.on('data', (c: Buffer) => chunks.push(c));
  const notes: string[] = [];
  const killGroup = (): boolean => {
    try { process.kill(-child.pid!, 'SIGKILL'); return true; } catch { return false; }
  };
  const timer = setTimeout(() => { notes.push(`killed after ${o.timeoutMs / 1000} s`); killGroup(); }, o.timeoutMs);
  const onAbort = (): void => { notes.push('interrupted'); killGroup(); };
  o.signal.addEventListener('abort', onAbort, { once: true });
  return new Promise((resolve) => {
    child.on('exit', (code, sig) => {
      clearTimeout(timer);
      o.signal.removeEventListener('abort', onAbort);
      // Zombies (killed, not yet reaped by init) are gone already; anything alive was left behind.
      const left = liveMembers(child.pid!);
      if (left.length > 0 && notes.length === 0) notes.push(`left processes running (killed now): ${left.join('; ')}`);
      killGroup();
      // A process that left the group may still hold the output pipe: do not wait on it for long.
      let finished = false;
      const done = (): void => {
        if (finished) return;
        finished = true;
        clearTimeout(late);
        const output = Buffer.concat(chunks).toString();
        const counts = Object.fromEntries(COUNTS.map((k) => [k, Number(new RegExp(`^ℹ ${k} (\\d+)$`, 'm').exec(output)?.[1] ?? 0)])) as FileResult['counts'];
        resolve({ file, ok: code === 0 && sig === null && notes.length === 0, ms: performance.now() - started, cpuMs: readCpu(cpuFile), output, counts, notes });
        rmSync(cpuDir, { recursive: true, force: true });
      };
      const late = setTimeout(done, 2000);
      child.once('close', done);
    });
  });
}

/** What cpu-preload.ts wrote; nothing if the file was killed or has no /proc. */
function readCpu(file: string): number | undefined {
  try { return Number(readFileSync(file, 'utf8')); } catch { return undefined; }
}

/** The live processes of process group `pgid`, as "pid command" (Linux /proc; elsewhere none are seen). */
function liveMembers(pgid: number): string[] {
  let pids: string[];
  try { pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d)); } catch { return []; }
  return pids.flatMap((pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so split after the last ')'.
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pgrp) !== pgid || state === 'Z') return [];
      return [`${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim().slice(0, 120)}`];
    } catch {
      return [];
    }
  });
}
