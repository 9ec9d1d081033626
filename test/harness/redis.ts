import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { freePort } from './ports.js';

export interface RedisProcess {
  readonly port: number;
  readonly url: string;
  readonly pid: number;
  signal(sig: NodeJS.Signals): void;
  stop(): Promise<void>;
}

/** A real redis-server on a free loopback port, no persistence; resolves once it accepts connections. */
export async function startRedis(): Promise<RedisProcess> {
  const port = await freePort();
  const child: ChildProcess = spawn('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning',
    '--logfile', '', '--daemonize', 'no',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = createInterface({ input: child.stdout! });
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('redis-server did not start within 10 s')), 10_000);
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`redis-server exited with ${code}`)); });
    lines.on('line', (line) => {
      if (line.includes('Ready to accept connections')) { clearTimeout(timer); resolve(); }
    });
  });
  // loglevel warning still prints the ready line at notice level on some builds; fall back to polling the port.
  await Promise.race([ready, pollPort(port)]);
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid!,
    signal: (sig) => { child.kill(sig); },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGCONT');
      child.kill('SIGKILL');
      await once(child, 'exit');
    },
  };
}

async function pollPort(port: number): Promise<void> {
  const { connect } = await import('node:net');
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.write('PING\r\n');
        s.once('data', (d) => { s.destroy(); resolve(d.toString().startsWith('+PONG')); });
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis on ${port} never answered PING`);
}
