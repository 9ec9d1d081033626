import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { promisify } from 'node:util';

// Hosts for the fault harness: each a Linux network namespace with one veth on a bridge,
// with its own address in a private /24 used only inside these namespaces (and by the
// bridge itself, so the test process can reach every host to start, watch and stop
// things). Processes run on a host through `ip netns exec`, which execs them, so the
// child's pid is the process itself (kill -9 and SIGSTOP reach it).
//
// Names carry the creating process's pid: `sf<pid>_<n>` for the bridge and namespaces
// (`sf<pid>_<n>-<host>`). A run that crashed leaves them behind; the next run removes
// every set whose creator is gone (and kills what still runs inside), and never touches
// a set whose creator is alive, so test files can build fleets at the same time.

const run = promisify(execFile);

export async function sh(cmd: string, args: readonly string[], input?: string): Promise<string> {
  const p = run(cmd, args, { timeout: 15_000 });
  if (input !== undefined) p.child.stdin!.end(input);
  const { stdout } = await p;
  return stdout;
}

export interface Host {
  readonly name: string;
  /** The namespace's name. */
  readonly ns: string;
  readonly ip: string;
}

let made = 0;

/** Why fault tests cannot run here, or undefined when they can (root, ip, iptables, namespaces, veth, a bridge). */
export async function cannotBuildHosts(): Promise<string | undefined> {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'network namespaces need root (CI runs as root)';
  for (const tool of ['ip', 'iptables']) {
    try { await sh(tool, ['-V']); } catch { return `${tool} is not installed (iproute2, iptables)`; }
  }
  const probe = `sfprobe${process.pid}`;
  try {
    await sh('ip', ['netns', 'add', probe]);
    await sh('ip', ['link', 'add', `${probe}b`.slice(0, 15), 'type', 'bridge']);
    await sh('ip', ['netns', 'exec', probe, 'iptables', '-L', '-n']);
    return undefined;
  } catch (err) {
    return `cannot make a network namespace, bridge and packet filter here: ${(err as Error).message.split('\n')[0]}`;
  } finally {
    await sh('ip', ['link', 'del', `${probe}b`.slice(0, 15)]).catch(() => {});
    await sh('ip', ['netns', 'del', probe]).catch(() => {});
  }
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM'; }
}

/** Kills every process in a namespace (SIGCONT first: a stopped one cannot die otherwise). */
async function killAllIn(ns: string): Promise<void> {
  const pids = (await sh('ip', ['netns', 'pids', ns]).catch(() => '')).split('\n').map(Number).filter((p) => p > 0);
  for (const p of pids) { try { process.kill(p, 'SIGCONT'); process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
}

/** Removes the hosts and bridges of runs whose creating process is gone. */
export async function removeStale(): Promise<string[]> {
  const removed: string[] = [];
  const owner = (name: string): number | undefined => {
    const m = /^sf(\d+)_\d+/.exec(name);
    return m === null ? undefined : Number(m[1]);
  };
  for (const line of (await sh('ip', ['netns', 'list'])).split('\n')) {
    const ns = line.split(' ')[0] ?? '';
    const pid = owner(ns);
    if (pid === undefined || alive(pid)) continue;
    await killAllIn(ns);
    await sh('ip', ['netns', 'del', ns]).catch(() => {});
    removed.push(ns);
  }
  for (const line of (await sh('ip', ['-o', 'link', 'show', 'type', 'bridge'])).split('\n')) {
    const name = /^\d+: ([^:@]+)/.exec(line)?.[1];
    const pid = name === undefined ? undefined : owner(name);
    if (pid === undefined || alive(pid)) continue;
    await sh('ip', ['link', 'del', name!]).catch(() => {});
    removed.push(name!);
  }
  return removed;
}

/** A /24 no route on this machine uses yet: 10.(100 + pid % 100).n.0. */
async function freeSubnet(n: number): Promise<string> {
  const routes = await sh('ip', ['-4', 'route', 'show']);
  for (let k = 0; k < 100; k++) {
    const net = `10.${100 + ((process.pid + k) % 100)}.${n % 250}`;
    if (!routes.includes(`${net}.`)) return net;
  }
  throw new Error('no free 10.x.y.0/24 for the fault hosts');
}

export class Hosts {
  private constructor(readonly id: string, readonly bridge: string, readonly bridgeIp: string, readonly hosts: ReadonlyMap<string, Host>) {}

  /** Builds one namespace per name on a fresh bridge; removes stale sets first. */
  static async create(names: readonly string[]): Promise<Hosts> {
    await removeStale();
    const id = `sf${process.pid}_${made++}`;
    const net = await freeSubnet(made);
    const bridge = id;
    const hosts = new Map<string, Host>();
    const built = new Hosts(id, bridge, `${net}.1`, hosts);
    try {
      await sh('ip', ['link', 'add', bridge, 'type', 'bridge']);
      // Bridged frames would otherwise cross this machine's own iptables FORWARD chain
      // (br_netfilter), whose policy is not ours to rely on: faults live in the hosts.
      await sh('sh', ['-c', `echo 0 > /sys/class/net/${bridge}/bridge/nf_call_iptables`]).catch(() => {});
      await sh('ip', ['addr', 'add', `${net}.1/24`, 'dev', bridge]);
      await sh('ip', ['link', 'set', bridge, 'up']);
      let i = 0;
      for (const name of names) {
        const ns = `${id}-${name}`;
        const veth = `${id}v${i}`;
        const ip = `${net}.${10 + i++}`;
        await sh('ip', ['netns', 'add', ns]);
        hosts.set(name, { name, ns, ip });
        await sh('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
        await sh('ip', ['link', 'set', veth, 'master', bridge, 'up']);
        await sh('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
        await sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
        await sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      }
    } catch (err) {
      await built.destroy();
      throw err;
    }
    return built;
  }

  host(name: string): Host {
    const h = this.hosts.get(name);
    if (h === undefined) throw new Error(`no host ${name}`);
    return h;
  }

  /** Runs `cmd` on a host; the child is the command itself (ip netns exec execs it). */
  spawn(host: Host, cmd: string, args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
    return spawn('ip', ['netns', 'exec', host.ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  }

  /** Runs a short command on a host (with `input` on its stdin) and returns its output. */
  exec(host: Host, cmd: string, args: readonly string[], input?: string): Promise<string> {
    return sh('ip', ['netns', 'exec', host.ns, cmd, ...args], input);
  }

  /** Every process still running on a host. */
  async pids(host: Host): Promise<number[]> {
    return (await sh('ip', ['netns', 'pids', host.ns]).catch(() => '')).split('\n').map(Number).filter((p) => p > 0);
  }

  /** Kills everything, then removes the namespaces and the bridge (their packet filters go with them). */
  async destroy(): Promise<void> {
    for (const h of this.hosts.values()) await killAllIn(h.ns);
    for (const h of this.hosts.values()) await sh('ip', ['netns', 'del', h.ns]).catch(() => {});
    await sh('ip', ['link', 'del', this.bridge]).catch(() => {});
  }
}
