// The measures of the anchors bench that survive a busy host: CPU time from the kernel's
// per-thread accounting, requests and latency percentiles from wrk, what V8's collector did
// from the probe each Node target runs (node-probe.ts), and the pinning that gives the
// tested process a core of its own.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ProbeWindow } from './node-probe.js';

/** The process and every descendant (nginx's workers), by /proc's parent links. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
    } catch { /* gone meanwhile */ }
  }
  const out: number[] = [];
  const walk = (p: number): void => { out.push(p); for (const c of children.get(p) ?? []) walk(c); };
  walk(root);
  return out;
}

/** Nanoseconds these processes' threads have run on a CPU (schedstat: exact, not tick-sampled). */
export function cpuNs(pids: readonly number[]): number {
  let ns = 0;
  for (const pid of pids) {
    let tasks: string[];
    try { tasks = readdirSync(`/proc/${pid}/task`); } catch { continue; }
    for (const t of tasks) {
      try { ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]); } catch { /* thread ended */ }
    }
  }
  return ns;
}

/** Every thread of these processes onto one CPU. */
export function pin(pids: readonly number[], cpu: number): void {
  for (const p of pids) {
    try { execFileSync('taskset', ['-a', '-pc', String(cpu), String(p)], { stdio: 'ignore' }); } catch { /* exited */ }
  }
}

/** One `wrk --latency` run with the report hook's JSON line (latencies in µs). */
export interface WrkResult {
  readonly requests: number;
  readonly duration_us: number;
  readonly non2xx: number;
  readonly err_connect: number;
  readonly err_read: number;
  readonly err_write: number;
  readonly err_timeout: number;
  readonly p50_us: number;
  readonly p90_us: number;
  readonly p99_us: number;
  readonly p999_us: number;
}

export interface WrkRun {
  readonly url: string;
  readonly headers: readonly string[];
  readonly script: string;
  readonly seconds: number;
  readonly connections: number;
  /** taskset's CPU list for wrk, or undefined to leave it unpinned. */
  readonly cpu: string | undefined;
}

export function runWrk(r: WrkRun): Promise<WrkResult> {
  const args = ['-t1', `-c${r.connections}`, `-d${r.seconds}s`, '--latency', '-s', r.script, ...r.headers.flatMap((h) => ['-H', h]), r.url];
  const [cmd, argv] = r.cpu === undefined ? ['wrk', args] : ['taskset', ['-c', r.cpu, 'wrk', ...args]];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { out += b.toString(); });
    child.on('error', reject);
    child.on('close', () => {
      const line = out.split('\n').find((l) => l.startsWith('WRKJSON '));
      if (line === undefined) reject(new Error(`wrk gave no report line:\n${out}`));
      else resolve(JSON.parse(line.slice(8)) as WrkResult);
    });
  });
}

/** The probe's window around `during`: SIGUSR2 before and after, then its file. */
export async function probed<T>(pid: number, dir: string, during: () => Promise<T>): Promise<{ value: T; gc: ProbeWindow | undefined }> {
  const file = join(dir, `${pid}.json`);
  rmSync(file, { force: true });
  process.kill(pid, 'SIGUSR2');
  const value = await during();
  process.kill(pid, 'SIGUSR2');
  for (let i = 0; i < 100 && !existsSync(file); i++) await new Promise((r) => setTimeout(r, 50));
  return { value, gc: existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) as ProbeWindow : undefined };
}

/** The harness's cpusnap.js: how much of the machine other processes used between two snapshots. */
export function otherCpu(anchors: string, ours: readonly number[]): { snap(): string; diff(a: string, b: string): number } {
  return {
    snap: () => execFileSync('node', [join(anchors, 'cpusnap.js'), 'snap'], { maxBuffer: 64 << 20 }).toString(),
    diff: (a, b) => {
      const fa = join(anchors, 'cpuA.json');
      const fb = join(anchors, 'cpuB.json');
      writeFileSync(fa, a);
      writeFileSync(fb, b);
      const out = execFileSync('node', [join(anchors, 'cpusnap.js'), 'diff', fa, fb, String(process.pid), ...ours.map(String)]).toString();
      return (JSON.parse(out) as { other_pct: number }).other_pct;
    },
  };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
