import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import type { Host, Hosts } from './netns.js';

// Faults on the links between hosts, and their heals. Every fault is packet filtering
// inside the namespaces of the hosts on its first side, matched on the other side's
// addresses, so the bridge and the test process's own control traffic are untouched:
//   - partition: DROP both ways (or one way: only what the first side sends);
//   - loss: DROP with iptables' statistic match (--mode random), both ways;
//   - latency: netem where the kernel has it; otherwise each packet the first side sends
//     to the second is held in an NFQUEUE by nfq-delay.py for the delay (real TCP still
//     crosses the link, with its retransmits and windows). Either way the whole delay is
//     added on the way out of the first side: the round trip grows by `ms`.
// A fault's heal deletes exactly the rules it added (and stops its holder).

const HOLDER = fileURLToPath(new URL('../../../load-tests/faults/nfq-delay.py', import.meta.url));

export interface Fault {
  readonly label: string;
  heal(): Promise<void>;
}

let queueNum = 0;
let netem: boolean | undefined;

/** Whether this kernel has the netem qdisc (probed once, in a scratch host). */
export async function hasNetem(hosts: Hosts, probeHost: Host): Promise<boolean> {
  if (netem !== undefined) return netem;
  try {
    await hosts.exec(probeHost, 'tc', ['qdisc', 'add', 'dev', 'eth0', 'root', 'netem', 'delay', '1ms']);
    await hosts.exec(probeHost, 'tc', ['qdisc', 'del', 'dev', 'eth0', 'root']);
    netem = true;
  } catch {
    netem = false;
  }
  return netem;
}

type Rule = readonly string[];

/** One iptables-restore run on a host: every rule applied at once (`-I` adds, `-D` deletes). */
function restore(hosts: Hosts, h: Host, op: '-I' | '-D', rules: readonly Rule[]): Promise<string> {
  return hosts.exec(h, 'iptables-restore', ['--noflush'], `*filter\n${rules.map((r) => `${op} ${r.join(' ')}`).join('\n')}\nCOMMIT\n`);
}

/**
 * Adds `rules` (iptables arguments after the chain op) on each host; the fault's heal
 * deletes them. One iptables-restore per host, so a host's rules take effect together
 * and a busy machine starts and ends the fault when scheduled (one iptables process per
 * rule took seconds here: a 5 s partition lasted 10).
 */
async function filter(hosts: Hosts, label: string, on: readonly Host[], rules: (h: Host) => readonly Rule[], extra?: () => Promise<void>): Promise<Fault> {
  const added: [Host, readonly Rule[]][] = [];
  const heal = async (): Promise<void> => {
    await Promise.all(added.splice(0).map(([h, r]) => restore(hosts, h, '-D', r).catch(() => {})));
    await extra?.();
  };
  try {
    await Promise.all(on.map(async (h) => {
      const r = rules(h);
      await restore(hosts, h, '-I', r);
      added.push([h, r]);
    }));
  } catch (err) {
    await heal();
    throw err;
  }
  return { label, heal };
}

const names = (hs: readonly Host[]): string => hs.map((h) => h.name).join(',');

/** `a` and `b` cannot reach each other (oneWay: packets from a to b are dropped; b to a still arrive). */
export function partition(hosts: Hosts, a: readonly Host[], b: readonly Host[], oneWay = false): Promise<Fault> {
  return filter(hosts, `partition ${names(a)} ${oneWay ? '->' : '<->'} ${names(b)}`, a, () => b.flatMap((peer) => [
    ['OUTPUT', '-d', peer.ip, '-j', 'DROP'],
    ...(oneWay ? [] : [['INPUT', '-s', peer.ip, '-j', 'DROP']]),
  ]));
}

/** Each packet between a and b (either way) is dropped with probability p. */
export function loss(hosts: Hosts, a: readonly Host[], b: readonly Host[], p: number): Promise<Fault> {
  const stat = ['-m', 'statistic', '--mode', 'random', '--probability', String(p), '-j', 'DROP'];
  return filter(hosts, `loss ${(p * 100).toFixed(0)}% ${names(a)} <-> ${names(b)}`, a, () => b.flatMap((peer) => [
    ['OUTPUT', '-d', peer.ip, ...stat],
    ['INPUT', '-s', peer.ip, ...stat],
  ]));
}

/** Adds `ms` to every round trip between a and b (held on the way out of a). */
export async function latency(hosts: Hosts, a: readonly Host[], b: readonly Host[], ms: number): Promise<Fault> {
  const label = `latency +${ms} ms ${names(a)} <-> ${names(b)}`;
  if (await hasNetem(hosts, a[0]!)) return netemDelay(hosts, label, a, b, ms);
  const holders: ChildProcess[] = [];
  const stop = async (): Promise<void> => { for (const c of holders.splice(0)) c.kill('SIGKILL'); };
  const queue = 100 + (queueNum++ % 60000);
  try {
    for (const h of a) {
      const c = hosts.spawn(h, 'python3', [HOLDER, String(queue), String(ms)]);
      holders.push(c);
      await new Promise<void>((resolve, reject) => {
        let err = '';
        c.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
        c.once('exit', (code) => reject(new Error(`nfq-delay.py exited (${code}): ${err}`)));
        createInterface({ input: c.stdout! }).once('line', (l) => (l === 'ready' ? resolve() : reject(new Error(l))));
      });
    }
  } catch (err) {
    await stop();
    throw err;
  }
  // --queue-bypass: if a holder dies, packets pass undelayed rather than being dropped.
  return filter(hosts, label, a, () => b.map((peer) => ['OUTPUT', '-d', peer.ip, '-j', 'NFQUEUE', '--queue-num', String(queue), '--queue-bypass']), stop);
}

/** netem on a's interface, only for packets to b (a prio qdisc whose third band delays, chosen by destination). */
async function netemDelay(hosts: Hosts, label: string, a: readonly Host[], b: readonly Host[], ms: number): Promise<Fault> {
  for (const h of a) {
    await hosts.exec(h, 'tc', ['qdisc', 'add', 'dev', 'eth0', 'root', 'handle', '1:', 'prio']);
    await hosts.exec(h, 'tc', ['qdisc', 'add', 'dev', 'eth0', 'parent', '1:3', 'handle', '30:', 'netem', 'delay', `${ms}ms`]);
    for (const peer of b) {
      await hosts.exec(h, 'tc', ['filter', 'add', 'dev', 'eth0', 'protocol', 'ip', 'parent', '1:0', 'prio', '3', 'u32', 'match', 'ip', 'dst', `${peer.ip}/32`, 'flowid', '1:3']);
    }
  }
  return {
    label,
    async heal() { for (const h of a) await hosts.exec(h, 'tc', ['qdisc', 'del', 'dev', 'eth0', 'root']).catch(() => {}); },
  };
}
