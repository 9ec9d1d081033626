import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { EVENT_TIMEOUT_MS } from './wait.js';

export interface NginxProcess {
  readonly pid: number;
  readonly port: number;
  readonly url: string;
  /** The temp dir holding nginx.conf, the pid file, error.log and temp paths. */
  readonly dir: string;
  readonly child: ChildProcess;
  /** error.log as it is now ('' before nginx wrote any). */
  errorLog(): string;
  stop(): Promise<void>;
}

export interface NginxOptions {
  /** nginx.conf text with @@NAME@@ placeholders; @@RUN_DIR@@ and @@LISTEN@@ are filled in here. */
  readonly template: string;
  readonly vars?: Record<string, string>;
  /** Extra files written into the run dir first, by name; a var's value may say `@@RUN_DIR@@/name` to point at one. */
  readonly files?: Record<string, string>;
  readonly env?: NodeJS.ProcessEnv;
  readonly startTimeoutMs?: number;
}

/** What every unprivileged test nginx needs in `http {}`: no access log, temp paths in its run dir. */
export const NGINX_RUN_PATHS = 'access_log off; client_body_temp_path @@RUN_DIR@@/body; proxy_temp_path @@RUN_DIR@@/proxy;'
  + ' fastcgi_temp_path @@RUN_DIR@@/fastcgi; uwsgi_temp_path @@RUN_DIR@@/uwsgi; scgi_temp_path @@RUN_DIR@@/scgi;';

/** A whole nginx.conf template: one worker, logs and pid in the run dir, `http` holding `httpBody`. */
export function nginxMain(httpBody: string, errorLevel = 'warn'): string {
  return `worker_processes 1;
error_log @@RUN_DIR@@/error.log ${errorLevel};
pid @@RUN_DIR@@/nginx.pid;
events { worker_connections 1024; }
http {
  ${NGINX_RUN_PATHS}
${httpBody}
}
`;
}

export function renderTemplate(template: string, vars: Record<string, string>): string {
  const out = template.replace(/@@([A-Z_]+)@@/g, (m, name: string) => {
    const v = vars[name];
    if (v === undefined) throw new Error(`nginx template: no value for ${m}`);
    return v;
  });
  return out;
}

/**
 * A real nginx (master + workers, in the foreground) from a rendered config in its own
 * temp dir, listening on a free loopback port; resolves once it accepts connections.
 */
export async function startNginx(o: NginxOptions): Promise<NginxProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-nginx-'));
  // When the tests run as root, nginx's workers run as nobody and must reach their temp paths.
  chmodSync(dir, 0o755);
  for (const [name, text] of Object.entries(o.files ?? {})) writeFileSync(join(dir, name), text);
  const port = await freePort();
  const vars: Record<string, string> = {};
  for (const [k, v] of Object.entries(o.vars ?? {})) vars[k] = v.replaceAll('@@RUN_DIR@@', dir);
  const conf = renderTemplate(o.template, { ...vars, RUN_DIR: dir, LISTEN: `127.0.0.1:${port}` });
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const child = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off; master_process on;'], {
    env: { ...process.env, ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  child.stdout!.on('data', (c: Buffer) => output.push(c.toString()));
  child.stderr!.on('data', (c: Buffer) => output.push(c.toString()));
  const errorLog = (): string => (existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : '');

  const deadline = performance.now() + (o.startTimeoutMs ?? EVENT_TIMEOUT_MS);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`nginx exited (${child.exitCode ?? child.signalCode}): ${output.join('')}\n${errorLog()}`);
    }
    if (await accepts(port)) break;
    if (performance.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`nginx did not accept on ${port} in time: ${output.join('')}\n${errorLog()}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    pid: child.pid!,
    port,
    url: `http://127.0.0.1:${port}`,
    dir,
    child,
    errorLog,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit');
        // TERM is nginx's fast shutdown: the master stops its workers and exits.
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}
