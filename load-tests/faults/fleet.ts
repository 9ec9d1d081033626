import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { pollUntil } from '../../test/harness/poll.js';
import { Hosts, sh, type Host } from './netns.js';

// A fleet spread over hosts: Redis master + 2 replicas with a sentinel beside each
// (r1..r3), gateways running the shipped config/examples/redis.yaml in Sentinel mode
// with their default workers (g1..gN), the echo upstream (up), and a host for the load
// generator (c). Settings that are the test fleet's own, for fast failure detection, are
// named here and in docs/faults.md: sentinel down-after 1000 ms and failover-timeout
// 3000 ms (the defaults are 30 s and 3 min). Everything else is as shipped.

const SHIPPED = fileURLToPath(new URL('../../../config/examples/redis.yaml', import.meta.url));
const ECHO = fileURLToPath(new URL('../echo-backend.js', import.meta.url));
export const SENTINEL_NAME = 'sluice';
export const DOWN_AFTER_MS = 1000;
export const FAILOVER_TIMEOUT_MS = 3000;
const REDIS_PORT = 6379;
const SENTINEL_PORT = 26379;
const GATEWAY_PORT = 8080;
const ADMIN_PORT = 9090;
const ECHO_PORTS = [7001, 7002] as const;

/**
 * The shipped redis.yaml, its store pointed at the sentinels instead of one url: the
 * Sentinel variant an operator writes (mode, sentinels, sentinel_name), nothing else changed.
 */
export function sentinelConfig(sentinels: readonly string[]): string {
  const text = readFileSync(SHIPPED, 'utf8');
  const url = /^ {2}url: .*$/m;
  if (!url.test(text)) throw new Error('config/examples/redis.yaml has no store url line to replace');
  return text.replace(url, `  mode: sentinel\n  sentinels: [${sentinels.join(', ')}]\n  sentinel_name: ${SENTINEL_NAME}`);
}

export interface RedisNode {
  readonly host: Host;
  readonly port: number;
  readonly dir: string;
  child: ChildProcess;
  /** The replicaof of its first start (a restart with AOF keeps it: its config is its arguments). */
  readonly args: readonly string[];
}

export interface FleetOptions {
  readonly gateways: number;
  /** min-replicas-to-write on every data node (with min-replicas-max-lag lagS), or none. */
  readonly minReplicas?: { readonly n: number; readonly lagS: number };
  /** Extra environment for the gateways. */
  readonly gatewayEnv?: NodeJS.ProcessEnv;
}

export class Fleet {
  readonly redis: RedisNode[] = [];
  readonly sentinels: { host: Host; child: ChildProcess }[] = [];
  readonly gateways: { host: Host; gw: GatewayProcess }[] = [];
  private readonly dirs: string[] = [];

  private constructor(readonly hosts: Hosts, private readonly o: FleetOptions) {}

  get client(): Host { return this.hosts.host('c'); }
  get upstream(): Host { return this.hosts.host('up'); }
  gatewayHosts(): Host[] { return this.gateways.map((g) => g.host); }
  redisHosts(): Host[] { return this.redis.map((r) => r.host); }

  /** Milliseconds each part took to start, for the report. */
  readonly startMs: Record<string, number> = {};

  static async start(o: FleetOptions): Promise<Fleet> {
    const names = ['r1', 'r2', 'r3', ...Array.from({ length: o.gateways }, (_, i) => `g${i + 1}`), 'up', 'c'];
    const hosts = await Hosts.create(names);
    const f = new Fleet(hosts, o);
    try {
      for (const [part, step] of [['redis', () => f.startRedis()], ['sentinels', () => f.startSentinels()], ['upstream', () => f.startUpstream()], ['gateways', () => f.startGateways()]] as const) {
        const t0 = performance.now();
        await step();
        f.startMs[part] = Math.round(performance.now() - t0);
      }
    } catch (err) {
      await f.stop();
      throw err;
    }
    return f;
  }

  private async startRedis(): Promise<void> {
    const master = this.hosts.host('r1');
    for (const name of ['r1', 'r2', 'r3']) {
      const host = this.hosts.host(name);
      const dir = mkdtempSync(join(tmpdir(), `sluice-faults-${name}-`));
      this.dirs.push(dir);
      const args = ['--bind', host.ip, '--port', String(REDIS_PORT), '--dir', dir, '--save', '', '--appendonly', 'yes',
        '--repl-diskless-sync-delay', '0', '--loglevel', 'warning', '--logfile', '', '--protected-mode', 'no',
        ...(this.o.minReplicas === undefined ? [] : ['--min-replicas-to-write', String(this.o.minReplicas.n), '--min-replicas-max-lag', String(this.o.minReplicas.lagS)]),
        ...(name === 'r1' ? [] : ['--replicaof', master.ip, String(REDIS_PORT)])];
      const node: RedisNode = { host, port: REDIS_PORT, dir, args, child: this.launchRedis(host, args) };
      this.redis.push(node);
    }
    for (const r of this.redis) await this.waitPong(r.host.ip, REDIS_PORT);
    await this.until('both replicas in sync', async () => ((await this.cli(master.ip, REDIS_PORT, 'info', 'replication')).match(/state=online/g) ?? []).length === 2);
  }

  private launchRedis(host: Host, args: readonly string[]): ChildProcess {
    const c = this.hosts.spawn(host, 'redis-server', args);
    c.stdout!.resume();
    c.stderr!.resume();
    return c;
  }

  private async startSentinels(): Promise<void> {
    const master = this.hosts.host('r1');
    for (const r of this.redis) {
      const conf = join(r.dir, 'sentinel.conf');
      writeFileSync(conf, [
        `port ${SENTINEL_PORT}`, `bind ${r.host.ip}`, `dir ${r.dir}`, 'protected-mode no',
        `sentinel monitor ${SENTINEL_NAME} ${master.ip} ${REDIS_PORT} 2`,
        `sentinel down-after-milliseconds ${SENTINEL_NAME} ${DOWN_AFTER_MS}`,
        `sentinel failover-timeout ${SENTINEL_NAME} ${FAILOVER_TIMEOUT_MS}`,
        `sentinel parallel-syncs ${SENTINEL_NAME} 1`, '',
      ].join('\n'));
      const child = this.hosts.spawn(r.host, 'redis-server', [conf, '--sentinel']);
      child.stdout!.resume();
      child.stderr!.resume();
      this.sentinels.push({ host: r.host, child });
    }
    for (const s of this.sentinels) await this.waitPong(s.host.ip, SENTINEL_PORT);
    await this.until('sentinels agree on master, replicas and each other', async () => {
      for (const s of this.sentinels) {
        const lines = (await this.cli(s.host.ip, SENTINEL_PORT, 'sentinel', 'master', SENTINEL_NAME)).split('\n');
        const field = (k: string): string | undefined => lines[lines.indexOf(k) + 1];
        if (field('num-slaves') !== '2' || field('num-other-sentinels') !== '2') return false;
      }
      return true;
    });
  }

  /** The shipped config lists two backends: two echo servers on the upstream host. */
  private async startUpstream(): Promise<void> {
    for (const port of ECHO_PORTS) {
      const c = this.hosts.spawn(this.upstream, process.execPath, [ECHO, String(port), this.upstream.ip]);
      c.stdout!.resume();
      c.stderr!.resume();
      await this.until('echo upstream listening', () => canConnect(this.upstream.ip, port));
    }
  }

  private async startGateways(): Promise<void> {
    const config = sentinelConfig(this.redis.map((r) => `${r.host.ip}:${SENTINEL_PORT}`));
    const [b1, b2] = ECHO_PORTS.map((p) => `http://${this.upstream.ip}:${p}`);
    const started = await Promise.all(Array.from({ length: this.o.gateways }, async (_, i) => {
      const host = this.hosts.host(`g${i + 1}`);
      const env = {
        SLUICE_HOST: host.ip, SLUICE_PORT: String(GATEWAY_PORT), SLUICE_ADMIN_HOST: host.ip, SLUICE_ADMIN_PORT: String(ADMIN_PORT),
        SLUICE_BACKEND_1: b1, SLUICE_BACKEND_2: b2, ...this.o.gatewayEnv,
      };
      // Default workers: no --workers flag, as an operator runs it. Waited for until they
      // listen or exit: a busy host takes tens of seconds to start nine processes at once,
      // and the primary gives up on a worker only when it goes silent (server.worker_stall_ms).
      return { host, gw: await spawnGateway(config, env, [], { netns: host.ns, host: host.ip, listenTimeoutMs: Infinity }) };
    }));
    this.gateways.push(...started);
  }

  /** redis-cli against a host's server (from the test process, over the bridge). */
  async cli(ip: string, port: number, ...args: string[]): Promise<string> {
    try { return await sh('redis-cli', ['-h', ip, '-p', String(port), ...args]); } catch { return ''; }
  }

  /** The master the sentinels' majority names now (the highest config epoch among those that answer). */
  async masterIp(): Promise<string | undefined> {
    let best: { ip: string; epoch: number } | undefined;
    for (const s of this.sentinels) {
      const lines = (await this.cli(s.host.ip, SENTINEL_PORT, 'sentinel', 'master', SENTINEL_NAME)).split('\n');
      const field = (k: string): string | undefined => { const i = lines.indexOf(k); return i < 0 ? undefined : lines[i + 1]; };
      const ip = field('ip');
      const epoch = Number(field('config-epoch'));
      if (ip !== undefined && (best === undefined || epoch > best.epoch)) best = { ip, epoch };
    }
    return best?.ip;
  }

  redisOn(ip: string): RedisNode {
    const r = this.redis.find((x) => x.host.ip === ip);
    if (r === undefined) throw new Error(`no redis on ${ip}`);
    return r;
  }

  /** Gateway hosts with a client connection (name `sluice`) to the Redis at ip. */
  async connectedGatewayHosts(ip: string): Promise<Set<string>> {
    const list = await this.cli(ip, REDIS_PORT, 'client', 'list');
    const from = new Set<string>();
    for (const line of list.split('\n')) {
      if (!/ name=sluice /.test(line)) continue;
      const addr = /addr=([\d.]+):/.exec(line)?.[1];
      const g = this.gateways.find((x) => x.host.ip === addr);
      if (g !== undefined) from.add(g.host.name);
    }
    return from;
  }

  /** Every process on a host gets SIGKILL: the host is gone. */
  async killHost(host: Host): Promise<void> {
    for (const pid of await this.hosts.pids(host)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  }

  /** A Redis node killed (kill -9) and started again on its own AOF, as a host reboot would. */
  async restartRedis(node: RedisNode): Promise<void> {
    node.child.kill('SIGKILL');
    if (node.child.exitCode === null && node.child.signalCode === null) await once(node.child, 'exit');
    node.child = this.launchRedis(node.host, node.args);
    await this.waitPong(node.host.ip, node.port);
  }

  private async waitPong(ip: string, port: number): Promise<void> {
    await this.until(`redis on ${ip}:${port}`, async () => (await this.cli(ip, port, 'ping')).trim() === 'PONG');
  }

  private async until(what: string, probe: () => Promise<boolean>, ms = 20_000): Promise<void> {
    const r = await pollUntil(async () => ((await probe()) ? true : undefined), ms, 50);
    if (r.value === undefined) throw new Error(`${what}: not within ${ms} ms`);
  }

  async stop(): Promise<void> {
    await Promise.all(this.gateways.map((g) => g.gw.stop('SIGKILL').catch(() => {})));
    await this.hosts.destroy();
    for (const d of this.dirs) rmSync(d, { recursive: true, force: true });
  }
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, host);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}
