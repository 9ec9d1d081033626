import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.js';
import { EVENT_TIMEOUT_MS } from './wait.js';

/**
 * A backend in a process of its own (so a test can SIGKILL it): answers every request
 * after `delayMs` with `{"backend":"<name>"}`, and `/healthz` at once. Run as a script:
 * `node delay-backend.js PORT DELAY_MS NAME`; it prints `listening <port>` when ready.
 */
export interface DelayBackend {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  readonly child: ChildProcess;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

const SELF = fileURLToPath(import.meta.url);

/**
 * `port`: by default one from the harness (ports.ts), not the kernel's choice: a test that
 * kills a backend and starts it again on its port must find the port still free, and a
 * port the kernel handed out may meanwhile be another process's (seen in parallel runs).
 */
export async function spawnDelayBackend(name: string, delayMs: number, port?: number): Promise<DelayBackend> {
  port ??= await freePort();
  const child = spawn(process.execPath, [SELF, String(port), String(delayMs), name], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const ready = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`backend ${name} did not start within ${EVENT_TIMEOUT_MS} ms`)), EVENT_TIMEOUT_MS);
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`backend ${name} exited with ${code}`)); });
    lines.on('line', (l) => {
      const m = /^listening (\d+)$/.exec(l);
      if (m !== null) { clearTimeout(timer); resolve(Number(m[1])); }
    });
  });
  const bound = await ready;
  return {
    name,
    port: bound,
    url: `http://127.0.0.1:${bound}`,
    child,
    async kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill(signal);
      await exited;
    },
  };
}

function main(port: number, delayMs: number, name: string): void {
  const server = createServer((req, res) => {
    req.resume();
    const answer = (): void => {
      const body = JSON.stringify({ backend: name });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    if (req.url === '/healthz') answer();
    else setTimeout(answer, delayMs);
  });
  server.keepAliveTimeout = 60_000;
  server.listen(port, '127.0.0.1', () => {
    process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
  });
  process.on('SIGTERM', () => { server.close(); server.closeAllConnections(); });
}

if (process.argv[1] === SELF) main(Number(process.argv[2]), Number(process.argv[3]), process.argv[4] ?? 'backend');
