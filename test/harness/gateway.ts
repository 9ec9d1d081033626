import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { EVENT_TIMEOUT_MS } from './wait.js';

/** How long a gateway may take to listen: past gateway/cli.ts's wait for spawned backends (120 s). */
const SPAWNED_STACK_LISTEN_MS = 150_000;

export const CLI = fileURLToPath(new URL('../../gateway/cli.js', import.meta.url));

export interface GatewayProcess {
  readonly pid: number;
  readonly port: number;
  readonly adminPort: number;
  readonly url: string;
  readonly adminUrl: string;
  /** Every stdout line so far, parsed when JSON. */
  readonly lines: Record<string, unknown>[];
  readonly stderr: string[];
  readonly child: ChildProcess;
  /** The config file the gateway runs on (a test rewrites it, then sends SIGHUP). */
  readonly file: string;
  /** Resolves with the first log line for which pred is true (already seen or future). */
  waitForLine(pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Where a gateway runs other than this machine's loopback: a fault-harness host (load-tests/faults/netns.ts). */
export interface GatewayPlace {
  /** The network namespace it runs in (`ip netns exec`, which execs it: the child is the gateway). */
  readonly netns: string;
  /** The address its listeners bind (the config must listen there), for url and adminUrl. */
  readonly host: string;
  /** How long to wait for it to listen (Infinity: until it listens or exits; a fleet of gateways with their workers starting at once on a busy host is slow). */
  readonly listenTimeoutMs?: number;
}

/**
 * Writes `config` (an object, as YAML) to a temp file and runs `sluice --config` on it as a
 * child process. One worker unless args say otherwise: tests see one process's caches and
 * counters, whatever the machine's core count.
 */
export async function spawnGateway(config: object | string, env: NodeJS.ProcessEnv = {}, args: readonly string[] = ['--workers', '1'], place?: GatewayPlace): Promise<GatewayProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-test-'));
  const file = join(dir, 'sluice.yaml');
  writeFileSync(file, typeof config === 'string' ? config : stringify(config));
  const argv = [CLI, '--config', file, ...args];
  const child = spawn(place === undefined ? process.execPath : 'ip', place === undefined ? argv : ['netns', 'exec', place.netns, process.execPath, ...argv], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  const waiters: { pred: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
  createInterface({ input: child.stdout! }).on('line', (text) => {
    let l: Record<string, unknown>;
    try { l = JSON.parse(text) as Record<string, unknown>; } catch { l = { raw: text }; }
    lines.push(l);
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i]!.pred(l)) { waiters[i]!.resolve(l); waiters.splice(i, 1); }
    }
  });
  createInterface({ input: child.stderr! }).on('line', (text) => stderr.push(text));

  const waitForLine = (pred: (l: Record<string, unknown>) => boolean, timeoutMs = EVENT_TIMEOUT_MS): Promise<Record<string, unknown>> => {
    const seen = lines.find(pred);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      // Infinity: until the line or the gateway's exit (the test's own timeout is the backstop).
      const timer = Number.isFinite(timeoutMs) ? setTimeout(() => reject(new Error(`no matching log line within ${timeoutMs} ms; the last lines: ${lines.slice(-12).map((l) => JSON.stringify(l)).join('\n')}; stderr: ${stderr.join('\n')}`)), timeoutMs) : undefined;
      const exitEarly = (): void => { clearTimeout(timer); reject(new Error(`gateway exited: ${stderr.join('\n')}`)); };
      child.once('exit', exitEarly);
      waiters.push({ pred, resolve: (l) => { clearTimeout(timer); child.off('exit', exitEarly); resolve(l); } });
    });
  };

  // Longer than the 120 s the gateway itself gives spawned backends (sharp and the face
  // model load first), which a default-stack test on a busy 2-core host can need.
  const listening = await waitForLine((l) => l.msg === 'sluice listening', place?.listenTimeoutMs ?? SPAWNED_STACK_LISTEN_MS);
  const port = listening.port as number;
  const adminPort = listening.admin_port as number;
  return {
    pid: child.pid!,
    port,
    adminPort,
    url: `http://${place?.host ?? '127.0.0.1'}:${port}`,
    adminUrl: `http://${place?.host ?? '127.0.0.1'}:${adminPort}`,
    lines,
    stderr,
    child,
    file,
    waitForLine,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}
