import { parseArgs } from 'node:util';
import { Fleet } from './fleet.js';
import { latency, loss, partition, type Fault } from './links.js';
import { cannotBuildHosts } from './netns.js';
import { reportTable, writeReport } from './report.js';
import { failOpenBoundOf, runScenario, type ScenarioResult } from './scenario.js';
import type { ExpectedPlan } from '../../gateway/loadtest/scenario.js';

// npm run bench:faults [-- --minutes 10 --report DIR --seed N]: random faults on the
// namespace fleet for a while (10 minutes by default), one every ~15 s, each judged by
// the same oracle and bounds as the CI scenarios. For people to run before a release.

const { values } = parseArgs({ options: { minutes: { type: 'string', default: '10' }, report: { type: 'string' }, seed: { type: 'string', default: '1' } } });
const why = await cannotBuildHosts();
if (why !== undefined) { process.stderr.write(`bench:faults cannot run here: ${why}\n`); process.exit(2); }
const FREE: ExpectedPlan = { rate: 5, burst: 10, quotaDay: 1000, quotaMonth: 0, maxInflight: 5 };
let seed = Number(values.seed);
const rand = (): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31; };
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

type Inject = (f: Fleet) => Promise<Fault>;
const stopCont = (f: Fleet, i: number): Inject => async () => {
  const gw = f.gateways[i]!.gw;
  const pids = await f.hosts.pids(f.gateways[i]!.host);
  for (const p of pids) process.kill(p, 'SIGSTOP');
  return { label: `SIGSTOP g${i + 1}`, heal: async () => { for (const p of pids) process.kill(p, 'SIGCONT'); void gw; } };
};
const faults: { name: string; make(f: Fleet): Inject }[] = [
  { name: 'cut-master', make: (f) => async () => partition(f.hosts, [pick(f.gatewayHosts())], [f.redisOn((await f.masterIp())!).host]) },
  { name: 'one-way-cut', make: (f) => async () => partition(f.hosts, [f.redisOn((await f.masterIp())!).host], [pick(f.gatewayHosts())], true) },
  { name: 'latency', make: (f) => () => latency(f.hosts, [pick(f.gatewayHosts())], f.redisHosts(), pick([100, 200, 400])) },
  { name: 'loss', make: (f) => () => loss(f.hosts, [pick(f.gatewayHosts())], f.redisHosts(), pick([0.05, 0.1, 0.3])) },
  { name: 'isolated-master', make: (f) => async () => {
    const m = f.redisOn((await f.masterIp())!).host;
    const [g] = f.gatewayHosts();
    return partition(f.hosts, [m, g!], [...f.redisHosts().filter((h) => h !== m), ...f.gatewayHosts().slice(1)]);
  } },
  { name: 'master-aof-restart', make: (f) => async () => {
    const m = f.redisOn((await f.masterIp())!);
    await f.restartRedis(m);
    return { label: `kill -9 + AOF restart of ${m.host.name}`, heal: async () => {} };
  } },
  { name: 'sigstop-gateway', make: (f) => stopCont(f, Math.floor(rand() * f.gateways.length)) },
];

const fleet = await Fleet.start({ gateways: 3, minReplicas: { n: 1, lagS: 1 } });
const results: ScenarioResult[] = [];
const bounds: number[] = [];
const until = Date.now() + Number(values.minutes) * 60_000;
try {
  let n = 0;
  while (Date.now() < until) {
    const kind = pick(faults);
    const forMs = 3000 + Math.floor(rand() * 5000);
    const r = await runScenario(fleet, {
      name: `${++n}-${kind.name}`, plan: FREE, planName: 'free', ratePerS: 60, durationMs: forMs + 6000,
      faults: [{ atMs: 2000, forMs, inject: kind.make(fleet) }],
    });
    const d = fleet.gateways.length * 2;
    // Each process that decided alone, over its own span; a deposed master admits burst + rate x 2 s more.
    const bound = failOpenBoundOf(FREE, d, r) + FREE.burst + FREE.rate * 2;
    results.push(r);
    bounds.push(bound);
    process.stdout.write(`${r.name}: over ${r.overAdmitted} (bound ${bound.toFixed(1)}), lost ${r.storeAdmitted - r.storeCounted}, statuses ${JSON.stringify(r.statuses)}\n`);
  }
} finally {
  await fleet.stop();
}
const over = results.filter((r, i) => r.overAdmitted > bounds[i]!);
process.stdout.write(`\n${reportTable(results)}\n\n${results.length} faults, ${over.length} over their bound${over.length > 0 ? `: ${over.map((r) => r.name).join(', ')}` : ''}\n`);
if (values.report !== undefined) writeReport(values.report, results);
process.exitCode = over.length > 0 ? 1 : 0;
