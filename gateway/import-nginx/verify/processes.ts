// The processes --verify runs: a throwaway certificate (openssl), nginx from the PATH on
// the rendered original, and Sluice on the imported config. Everything lives in one temp
// dir and stops with it.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Certificate { readonly cert: string; readonly key: string; readonly certPem: string; readonly keyPem: string }

/** A self-signed certificate for 127.0.0.1 and any name: TLS kept, with nothing real in it. P-256: its key is made in milliseconds, where RSA 2048 took 0.2-1 s of CPU on every --verify. */
export async function throwawayCertificate(dir: string): Promise<Certificate> {
  const cert = join(dir, 'verify.crt');
  const key = join(dir, 'verify.key');
  await new Promise<void>((resolve, reject) => {
    execFile('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=sluice-verify',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-addext', 'basicConstraints=critical,CA:TRUE'], (err, _o, stderr) => (err === null ? resolve() : reject(new Error(`openssl: ${stderr || err.message}`))));
  });
  return { cert, key, certPem: readFileSync(cert, 'utf8'), keyPem: readFileSync(key, 'utf8') };
}

/** A loopback port nobody listens on now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

export interface Running {
  readonly name: string;
  readonly child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts a server and waits until every port accepts and `ready` holds for its output: a
 * port that accepts may be another process's (one that took it after it was picked), so
 * a server that says when it listens is also asked.
 */
async function startAndWait(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv, ports: readonly number[], timeoutMs: number, extraLog: () => string, ready: (output: string) => boolean = () => true): Promise<Running> {
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const out: string[] = [];
  child.stdout!.on('data', (c: Buffer) => out.push(c.toString()));
  child.stderr!.on('data', (c: Buffer) => out.push(c.toString()));
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  const running: Running = {
    name, child,
    output: () => `${out.join('')}${extraLog()}`,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const failed = await Promise.race([spawnError, new Promise<undefined>((r) => setTimeout(() => r(undefined), 50))]);
    if (failed !== undefined) throw new Error(`${name}: ${failed.message}`);
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}): ${running.output().slice(-4000)}`);
    const up = await Promise.all(ports.map(accepts));
    if (up.every(Boolean) && ready(out.join(''))) return running;
    if (Date.now() > deadline) {
      await running.stop();
      throw new Error(`${name} did not listen on ${ports.join(', ')} within ${timeoutMs} ms: ${running.output().slice(-4000)}`);
    }
  }
}

export function startNginx(dir: string, ports: readonly number[], timeoutMs: number): Promise<Running> {
  const conf = join(dir, 'nginx.conf');
  const errorLog = join(dir, 'error.log');
  return startAndWait('nginx', 'nginx', ['-p', dir, '-c', conf, '-g', 'daemon off; master_process on;'], process.env, ports, timeoutMs,
    () => (existsSync(errorLog) ? `\n${readFileSync(errorLog, 'utf8')}` : ''));
}

const CLI = fileURLToPath(new URL('../../cli.js', import.meta.url));

export function startSluice(dir: string, yaml: string, ports: readonly number[], caFile: string, timeoutMs: number): Promise<Running> {
  const file = join(dir, 'sluice.yaml');
  writeFileSync(file, yaml);
  return startAndWait('sluice', process.execPath, [CLI, '--config', file, '--workers', '1'], { ...process.env, NODE_EXTRA_CA_CERTS: caFile }, ports, timeoutMs, () => '',
    (output) => output.includes('"msg":"sluice listening"'));
}
