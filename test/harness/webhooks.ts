import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createRedisClient } from '../../common/redis-client.js';
import { storeConfigOf } from '../../common/store-config.js';
import { WebhookKeyring } from '../../common/webhook-keys/keyring.js';
import { newMasterKeyText, parseMasterKey } from '../../common/webhook-keys/master-key.js';
import { RedisKeyringStorage } from '../../common/webhook-keys/storage.js';
import type { StoreConfig } from '../../common/store-config.js';
import { EVENT_TIMEOUT_MS } from './wait.js';

const WEBHOOKS_CLI = fileURLToPath(new URL('../../backends/webhooks/cli.js', import.meta.url));
const BACKEND_CLI = fileURLToPath(new URL('../../backends/cli.js', import.meta.url));

export const newSecret = (): string => `whsec_${randomBytes(32).toString('base64')}`;

/** A master key's text for SLUICE_MASTER_KEY. */
export const newMasterKey = newMasterKeyText;

/**
 * The keyring the gateways keep in a store's Redis (standalone, Sentinel or Cluster, with
 * its prefix), for a test to read or rotate a customer's key as GET/POST /v1/webhooks/key
 * would; close() disconnects.
 */
export function storeKeyring(store: StoreConfig, master: string): WebhookKeyring & { close(): void } {
  const client = createRedisClient(store, { maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  const keyring = new WebhookKeyring(new RedisKeyringStorage(client, store.prefix), { current: parseMasterKey(master), previous: [] });
  return Object.assign(keyring, { close: () => client.disconnect() });
}

/** storeKeyring for a standalone Redis and the default prefix. */
export function redisKeyring(url: string, master: string): WebhookKeyring & { close(): void } {
  return storeKeyring(urlStore(url), master);
}

/** One customer's current webhook key in that store (created if it has none). */
export async function customerKey(store: StoreConfig, master: string, customer: string): Promise<string> {
  const k = storeKeyring(store, master);
  try {
    return (await k.state(customer)).key;
  } finally {
    k.close();
  }
}

/** The store config `--redis URL` amounts to, for enqueuers and workers run in the test process. */
export function urlStore(url: string): StoreConfig {
  return storeConfigOf({ kind: 'redis', url });
}

export interface NodeProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Every stdout line so far, parsed when JSON. */
  readonly lines: Record<string, unknown>[];
  stderr(): string;
  /** Resolves with the first log line for which pred is true (already seen or future). */
  waitForLine(pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Sends `signal` and waits for the exit (SIGKILL after 10 s); resolves with the exit code or signal. */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/** Runs a Node CLI of this package; resolves once it logged `readyMsg`. */
async function spawnCli(script: string, args: readonly string[], env: NodeJS.ProcessEnv, readyMsg: string): Promise<NodeProcess & { ready: Record<string, unknown> }> {
  const child = spawn(process.execPath, [script, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const lines: Record<string, unknown>[] = [];
  const waiters: { pred: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
  createInterface({ input: child.stdout! }).on('line', (text) => {
    let l: Record<string, unknown>;
    try { l = JSON.parse(text) as Record<string, unknown>; } catch { l = { raw: text }; }
    lines.push(l);
    for (let i = waiters.length - 1; i >= 0; i--) if (waiters[i]!.pred(l)) { waiters[i]!.resolve(l); waiters.splice(i, 1); }
  });
  const waitForLine = (pred: (l: Record<string, unknown>) => boolean, timeoutMs = EVENT_TIMEOUT_MS): Promise<Record<string, unknown>> => {
    const seen = lines.find(pred);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching log line within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
      const exited = (): void => { clearTimeout(timer); reject(new Error(`${script} exited: ${stderr}`)); };
      child.once('exit', exited);
      waiters.push({ pred, resolve: (l) => { clearTimeout(timer); child.off('exit', exited); resolve(l); } });
    });
  };
  const proc: NodeProcess = {
    child, pid: child.pid!, lines, stderr: () => stderr, waitForLine,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode ?? child.signalCode!;
      const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
      child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const [code, sig] = await exited;
      clearTimeout(t);
      return code ?? sig!;
    },
  };
  try {
    const ready = await waitForLine((l) => l.msg === readyMsg);
    return { ...proc, ready };
  } catch (err) {
    await proc.stop('SIGKILL');
    throw err;
  }
}

export interface WebhooksProcess extends NodeProcess {
  readonly adminUrl: string;
}

/** `sluice-webhooks` delivering from a Redis url (or a gateway config's store), allowed to reach 127.0.0.1, admin on a free port. */
export async function spawnWebhooks(from: string | { storeFile: string }, args: readonly string[], env: NodeJS.ProcessEnv): Promise<WebhooksProcess> {
  const target = typeof from === 'string' ? ['--redis', from] : ['--store', from.storeFile];
  const p = await spawnCli(WEBHOOKS_CLI, [...target, '--allow', '127.0.0.1', '--admin-port', '0', ...args], env, 'webhooks worker running');
  return { ...p, adminUrl: `http://127.0.0.1:${p.ready.admin_port as number}` };
}

export interface BackendProcess extends NodeProcess {
  readonly url: string;
}

/** A real `sluice-backend` on a free port, small and without face detection. */
export async function spawnImageBackend(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<BackendProcess> {
  const p = await spawnCli(BACKEND_CLI, ['--port', '0', '--face-workers', '0', '--no-reexec', '--concurrency', '2', ...args], env, 'backend listening');
  return { ...p, url: `http://127.0.0.1:${p.ready.port as number}` };
}

export interface Delivery {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly at: number;
}

/** What the receiver does with one request: answer a status (with headers), or hold it open. */
export type Reply = { status: number; headers?: Record<string, string> } | 'hold';

export interface Receiver {
  readonly url: string;
  readonly deliveries: Delivery[];
  /** Decides each answer; replaced by tests as the scenario moves on. Default: 200. */
  reply: (d: Delivery, nth: number) => Reply;
  /** Resolves once `pred` holds for the deliveries so far (checked on each arrival). */
  until(pred: (ds: readonly Delivery[]) => boolean, timeoutMs?: number): Promise<void>;
  /** Answers every held request with `status`. */
  release(status?: number): void;
  close(): Promise<void>;
}

/** A webhook receiver on 127.0.0.1 in the test process, recording every request. */
export async function startReceiver(): Promise<Receiver> {
  const deliveries: Delivery[] = [];
  const held: ServerResponse[] = [];
  const checks: { pred: (ds: readonly Delivery[]) => boolean; resolve: () => void }[] = [];
  const r: Receiver = {
    url: '',
    deliveries,
    reply: () => ({ status: 200 }),
    until(pred, timeoutMs = EVENT_TIMEOUT_MS) {
      if (pred(deliveries)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`receiver: condition not met within ${timeoutMs} ms; got ${deliveries.length} deliveries: ${deliveries.map((d) => d.path).join(' ')}`)), timeoutMs);
        checks.push({ pred, resolve: () => { clearTimeout(timer); resolve(); } });
      });
    },
    release(status = 200) {
      for (const res of held.splice(0)) { res.writeHead(status); res.end(); }
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const d: Delivery = { path: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: performance.now() };
      const nth = deliveries.filter((x) => x.path === d.path).length;
      deliveries.push(d);
      const reply = r.reply(d, nth);
      if (reply === 'hold') held.push(res);
      else { res.writeHead(reply.status, reply.headers); res.end('ok'); }
      for (let i = checks.length - 1; i >= 0; i--) if (checks[i]!.pred(deliveries)) { checks[i]!.resolve(); checks.splice(i, 1); }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return Object.assign(r, { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
}
