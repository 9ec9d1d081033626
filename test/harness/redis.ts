import { Redis } from 'ioredis';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { pollUntil } from './poll.js';
import { freePort } from './ports.js';
import { EVENT_TIMEOUT_MS } from './wait.js';
import type { TestPki } from './tls-pki.js';

const execFileP = promisify(execFile);

export interface RedisProcess {
  readonly port: number;
  readonly url: string;
  readonly pid: number;
  signal(sig: NodeJS.Signals): void;
  stop(): Promise<void>;
}

/** A real redis-server on a free loopback port, no persistence; resolves once it accepts connections. */
export async function startRedis(extraArgs: readonly string[] = []): Promise<RedisProcess> {
  return startRedisOnPort(await freePort(), extraArgs);
}

/** startRedis on a given port: a test that restarts a server (same port, same --dir) calls it again. */
export async function startRedisOnPort(port: number, extraArgs: readonly string[] = []): Promise<RedisProcess> {
  return spawnRedis(['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning',
    '--logfile', '', '--daemonize', 'no', ...extraArgs], port);
}

/**
 * A redis-server that speaks only TLS, on a free loopback port, and requires client
 * certificates signed by the PKI's CA (`url` is plain redis://: the store's `tls`
 * config is what must turn TLS on). `--tls-replication yes`: a replica of it (extraArgs
 * `--replicaof`) syncs over TLS too.
 */
export async function startRedisTls(pki: TestPki, extraArgs: readonly string[] = []): Promise<RedisProcess> {
  const port = await freePort();
  return spawnRedis(['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--loglevel', 'warning', '--logfile', '', '--daemonize', 'no', ...tlsServerArgs(pki), ...extraArgs], port, pki);
}

function tlsServerArgs(pki: TestPki): string[] {
  return ['--tls-cert-file', pki.serverCert, '--tls-key-file', pki.serverKey, '--tls-ca-cert-file', pki.ca,
    '--tls-auth-clients', 'yes', '--tls-replication', 'yes'];
}

/** Starts `redis-server args` (a server or, with --sentinel, a sentinel) that will listen on `port`. */
async function spawnRedis(args: readonly string[], port: number, pki?: TestPki): Promise<RedisProcess> {
  const child: ChildProcess = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = createInterface({ input: child.stdout! });
  // The pipe must be drained or a chatty server (cluster, sentinel) blocks on a full pipe.
  child.stderr!.resume();
  let exited = false;
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start within ${EVENT_TIMEOUT_MS} ms`)), EVENT_TIMEOUT_MS);
    child.once('exit', (code) => { exited = true; clearTimeout(timer); reject(new Error(`redis-server exited with ${code}`)); });
    lines.on('line', (line) => {
      if (line.includes('Ready to accept connections')) { clearTimeout(timer); resolve(); }
    });
  });
  // loglevel warning still prints the ready line at notice level on some builds; fall back to polling the port.
  try {
    await Promise.race([ready, pollPort(port, pki)]);
  } catch (e) {
    // A server that never became ready must not outlive the test that gave up on it.
    if (!exited) { child.kill('SIGKILL'); await once(child, 'exit'); }
    throw e;
  }
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid!,
    signal: (sig) => { if (!exited) child.kill(sig); },
    async stop() {
      if (exited || child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGCONT');
      child.kill('SIGKILL');
      await once(child, 'exit');
    },
  };
}

/** One command through redis-cli (bounded by a timeout): the harness needs no client of its own. */
export async function redisCli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await execFileP('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 15_000 });
  return stdout;
}

/** redis-cli options for a server of startRedisTls (or a TLS sentinel): the CA and the client certificate. */
function cliTls(pki: TestPki | undefined): string[] {
  return pki === undefined ? [] : ['--tls', '--cacert', pki.ca, '--cert', pki.clientCert, '--key', pki.clientKey];
}

async function plainCliOrEmpty(port: number, ...args: string[]): Promise<string> {
  try { return await redisCli(port, ...args); } catch { return ''; }
}

async function waitFor(what: string, deadlineMs: number, probe: () => Promise<boolean>): Promise<void> {
  const r = await pollUntil(async () => (await probe()) ? true : undefined, deadlineMs, 100);
  if (r.value === undefined) throw new Error(`${what} not within ${deadlineMs} ms`);
}

async function stopAll(ps: readonly RedisProcess[]): Promise<void> {
  await Promise.all(ps.map((p) => p.stop()));
}

export interface RedisCluster {
  /** Seed urls (every node); the client discovers which are masters. */
  readonly nodes: readonly string[];
  readonly processes: readonly RedisProcess[];
  /** The process serving `slot` as master right now. */
  masterOf(slot: number): Promise<RedisProcess>;
  stop(): Promise<void>;
}

/**
 * 3 masters with one replica each, created by `redis-cli --cluster create`. A node
 * timeout of 1 s lets a failover test see a promotion within a few seconds; partial
 * coverage is allowed so a dead master stops only its own slots, as in production. With
 * a PKI every node speaks TLS only (clients, replication and the cluster bus) and wants
 * client certificates.
 */
export async function startRedisCluster(pki?: TestPki): Promise<RedisCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-cluster-'));
  const processes: RedisProcess[] = [];
  const server = (args: string[]): Promise<RedisProcess> => (pki === undefined ? startRedis(args) : startRedisTls(pki, [...args, '--tls-cluster', 'yes']));
  const cliOrEmpty = (port: number, ...args: string[]): Promise<string> => plainCliOrEmpty(port, ...cliTls(pki), ...args);
  try {
    for (let i = 0; i < 6; i++) {
      const busPort = await freePort();
      processes.push(await server(['--cluster-enabled', 'yes', '--cluster-port', String(busPort),
        '--cluster-config-file', join(dir, `nodes-${i}.conf`), '--dir', dir, '--cluster-node-timeout', '1000',
        // Replicas sync at once: by default a master waits 5 s before a diskless full
        // sync, and a replica that never synced refuses to be promoted.
        '--cluster-require-full-coverage', 'no', '--repl-diskless-sync-delay', '0']));
    }
    const addrs = processes.map((p) => `127.0.0.1:${p.port}`);
    await execFileP('redis-cli', [...cliTls(pki), '--cluster', 'create', ...addrs, '--cluster-replicas', '1', '--cluster-yes'], { timeout: 30_000 });
    await waitFor('cluster state ok on all 6 nodes', EVENT_TIMEOUT_MS, async () => {
      for (const p of processes) {
        const info = await cliOrEmpty(p.port, 'cluster', 'info');
        if (!info.includes('cluster_state:ok') || !info.includes('cluster_known_nodes:6')) return false;
      }
      // Every replica must be attached and synced, or a master killed now would have no one to promote.
      const nodes = await cliOrEmpty(processes[0]!.port, 'cluster', 'nodes');
      const replicas = nodes.split('\n').filter((l) => / (myself,)?slave /.test(l) && !l.includes('fail'));
      if (replicas.length !== 3) return false;
      for (const line of replicas) {
        const port = Number(line.split(' ')[1]!.split(':')[1]!.split('@')[0]);
        if (!(await cliOrEmpty(port, 'info', 'replication')).includes('master_link_status:up')) return false;
      }
      return true;
    });
  } catch (e) {
    await stopAll(processes);
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    nodes: processes.map((p) => p.url),
    processes,
    async masterOf(slot) {
      for (const p of processes) {
        // Any live node's view will do; a killed one answers nothing and is skipped.
        const nodes = await cliOrEmpty(p.port, 'cluster', 'nodes');
        for (const line of nodes.split('\n')) {
          const f = line.split(' ');
          if (!/master/.test(f[2] ?? '') || /fail/.test(f[2] ?? '')) continue;
          const owns = f.slice(8).some((r) => { const [a, b] = r.split('-').map(Number); return slot >= a! && slot <= (b ?? a)!; });
          if (owns) {
            const port = Number(f[1]!.split(':')[1]!.split('@')[0]);
            const found = processes.find((q) => q.port === port);
            if (found) return found;
          }
        }
      }
      throw new Error(`no live master serves slot ${slot}`);
    },
    async stop() {
      await stopAll(processes);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface RedisSentinel {
  readonly name: string;
  readonly sentinels: readonly { host: string; port: number }[];
  readonly master: RedisProcess;
  readonly replicas: readonly RedisProcess[];
  readonly sentinelProcesses: readonly RedisProcess[];
  /** The master's port as the sentinels report it (changes after a failover). */
  masterPort(): Promise<number | undefined>;
  stop(): Promise<void>;
}

/**
 * A master, 2 replicas and 3 sentinels (quorum 2). down-after 1 s and a 5 s failover
 * timeout keep a failover test short; resolves once every sentinel knows the master,
 * both replicas and both other sentinels. With a PKI every server and sentinel speaks
 * TLS only and wants client certificates.
 */
export async function startRedisSentinel(pki?: TestPki): Promise<RedisSentinel> {
  const name = 'sluice';
  const dir = await mkdtemp(join(tmpdir(), 'sluice-sentinel-'));
  const all: RedisProcess[] = [];
  const server = (args: string[]): Promise<RedisProcess> => (pki === undefined ? startRedis(args) : startRedisTls(pki, args));
  const cli = (port: number, ...args: string[]): Promise<string> => plainCliOrEmpty(port, ...cliTls(pki), ...args);
  try {
    // Without a diskless sync delay (5 s by default) the replicas are in sync at once.
    const master = await server(['--repl-diskless-sync-delay', '0']);
    all.push(master);
    const replicas = [await server(['--replicaof', '127.0.0.1', String(master.port)]), await server(['--replicaof', '127.0.0.1', String(master.port)])];
    all.push(...replicas);
    await waitFor('both replicas in sync', EVENT_TIMEOUT_MS, async () => {
      const info = await cli(master.port, 'info', 'replication');
      return (info.match(/state=online/g) ?? []).length === 2;
    });
    const sentinelProcesses: RedisProcess[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      // A sentinel rewrites its config file, so each needs its own, writable.
      const conf = join(dir, `sentinel-${i}.conf`);
      // With TLS the sentinel listens on TLS only and reaches the servers and the other sentinels over it.
      const listen = pki === undefined ? [`port ${port}`] : [
        'port 0', `tls-port ${port}`, `tls-cert-file ${pki.serverCert}`, `tls-key-file ${pki.serverKey}`,
        `tls-ca-cert-file ${pki.ca}`, 'tls-auth-clients yes', 'tls-replication yes',
      ];
      await writeFile(conf, [
        ...listen, 'bind 127.0.0.1', `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${master.port} 2`,
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 5000`,
        `sentinel parallel-syncs ${name} 1`, '',
      ].join('\n'));
      const s = await spawnRedis([conf, '--sentinel'], port, pki);
      sentinelProcesses.push(s);
      all.push(s);
    }
    await waitFor('sentinels agree on master, replicas and each other', EVENT_TIMEOUT_MS, async () => {
      for (const s of sentinelProcesses) {
        const m = await cli(s.port, 'sentinel', 'master', name);
        const lines = m.split('\n');
        const field = (k: string): string | undefined => lines[lines.indexOf(k) + 1];
        if (lines.indexOf('num-slaves') < 0 || field('num-slaves') !== '2' || field('num-other-sentinels') !== '2') return false;
        if (field('port') !== String(master.port)) return false;
      }
      return true;
    });
    return {
      name,
      sentinels: sentinelProcesses.map((s) => ({ host: '127.0.0.1', port: s.port })),
      master,
      replicas,
      sentinelProcesses,
      async masterPort() {
        for (const s of sentinelProcesses) {
          const out = (await cli(s.port, 'sentinel', 'get-master-addr-by-name', name)).trim().split('\n');
          if (out.length === 2) return Number(out[1]);
        }
        return undefined;
      },
      async stop() {
        await stopAll(all);
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await stopAll(all);
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

/**
 * One sentinel on its own (no peers, quorum 1) monitoring the master at masterPort
 * under `name`: a sentinel whose view is not the majority's (config epoch 0).
 */
export async function startLoneSentinel(masterPort: number, name: string): Promise<RedisProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-lone-sentinel-'));
  const port = await freePort();
  const conf = join(dir, 'sentinel.conf');
  await writeFile(conf, [`port ${port}`, 'bind 127.0.0.1', `dir ${dir}`, `sentinel monitor ${name} 127.0.0.1 ${masterPort} 1`, ''].join('\n'));
  try {
    const s = await spawnRedis([conf, '--sentinel'], port);
    return { ...s, async stop() { await s.stop(); await rm(dir, { recursive: true, force: true }); } };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

async function pollPort(port: number, pki?: TestPki): Promise<void> {
  const { connect } = await import('node:net');
  const tls = await import('node:tls');
  const { readFileSync } = await import('node:fs');
  const tlsOpts = pki === undefined ? undefined
    : { ca: readFileSync(pki.ca), cert: readFileSync(pki.clientCert), key: readFileSync(pki.clientKey) };
  for (const deadline = performance.now() + EVENT_TIMEOUT_MS; performance.now() < deadline;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = tlsOpts === undefined ? connect(port, '127.0.0.1') : tls.connect({ port, host: '127.0.0.1', ...tlsOpts });
      s.once(tlsOpts === undefined ? 'connect' : 'secureConnect', () => {
        s.write('PING\r\n');
        // A server with requirepass answers NOAUTH: it is up all the same.
        s.once('data', (d) => { s.destroy(); resolve(/^(\+PONG|-NOAUTH)/.test(d.toString())); });
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis on ${port} never answered PING`);
}

export interface RedisMonitor {
  /** Every command the server has run since the monitor started, as its words. */
  readonly commands: string[][];
  /** Resolves once every command sent before it was called has been seen; returns the count then. */
  barrier(): Promise<number>;
  close(): void;
}

/**
 * Redis's MONITOR, to prove what a gateway did or did not ask: every command any client
 * sends is recorded. barrier() sends a marker through another connection and waits for
 * MONITOR to report it, so "nothing happened" is judged on the server's own stream, not on
 * a sleep.
 */
export async function monitorRedis(url: string): Promise<RedisMonitor> {
  const m = await new Redis(url).monitor();
  const other = new Redis(url);
  const commands: string[][] = [];
  const waiters = new Map<string, () => void>();
  m.on('monitor', (_time: string, args: string[]) => {
    commands.push(args);
    if (args[0]?.toLowerCase() === 'echo') waiters.get(args[1] ?? '')?.();
  });
  let n = 0;
  return {
    commands,
    async barrier() {
      const marker = `barrier-${process.pid}-${n++}`;
      const seen = new Promise<void>((resolve) => waiters.set(marker, resolve));
      await other.echo(marker);
      await seen;
      waiters.delete(marker);
      return commands.length;
    },
    close() {
      m.disconnect();
      other.disconnect();
    },
  };
}
