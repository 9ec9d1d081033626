import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { reportTable, writeReport } from './report.js';
import { Fleet } from './fleet.js';
import { latency, loss, partition } from './links.js';
import { cannotBuildHosts } from './netns.js';
import { failOpenBound, runScenario, type ScenarioResult } from './scenario.js';
import type { ExpectedPlan } from '../loadtest/scenario.js';
import { pollUntil } from '../../test/harness/poll.js';

// Issue 22: the limits across hosts whose network fails. One fleet on network-namespace
// hosts (load-tests/faults/fleet.ts: Redis master + 2 replicas and 3 sentinels on r1..r3,
// 3 gateways running the shipped redis.yaml in Sentinel mode with their default workers,
// the echo upstream, the client on a host of its own), shared by the scenarios in turn;
// each scenario uses a customer of its own. Every answer is judged by the loadtest's
// oracle, and each scenario checks the bound docs/faults.md states for its fault.

/** The shipped plan `free`. */
const FREE: ExpectedPlan = { rate: 5, burst: 10, quotaDay: 1000, quotaMonth: 0, maxInflight: 5 };
const RATE = 60;
const reason = await cannotBuildHosts();
const results: ScenarioResult[] = [];

describe('faults across hosts (network namespaces)', { skip: reason }, () => {
  let fleet: Fleet;
  before(async () => { fleet = await Fleet.start({ gateways: 3 }); process.stdout.write(`fleet started: ${JSON.stringify(fleet.startMs)}\n`); });
  after(async () => {
    await fleet?.stop();
    if (results.length > 0) {
      process.stdout.write(`${reportTable(results)}\n`);
      if (process.env.SLUICE_FAULTS_REPORT !== undefined) writeReport(process.env.SLUICE_FAULTS_REPORT, results);
    }
  });

  /** Worker processes in the fleet (each counts itself in the heartbeat set). */
  const processes = async (): Promise<number> => {
    const m = (await fleet.cli((await fleet.masterIp())!, 6379, 'zcard', 'sluice:instances')).trim();
    return Number(m);
  };
  const statusesOnly = (r: ScenarioResult, allowed: readonly string[]): string[] => Object.keys(r.statuses).filter((s) => !allowed.includes(s));

  it('a gateway host cut from the master only follows its failure policy; the fleet stays within the fail-open bound, the store counts exactly what it decided', async (t: TestContext) => {
    const g1 = fleet.gatewayHosts()[0]!;
    const d = await processes();
    const r = await runScenario(fleet, {
      name: 'cut-master', plan: FREE, planName: 'free', ratePerS: RATE, durationMs: 7000,
      faults: [{ atMs: 2000, forMs: 3000, inject: async (f) => partition(f.hosts, [g1], [f.redisOn((await f.masterIp())!).host]) }],
    });
    results.push(r);
    const perHost = d / fleet.gateways.length;
    const bound = failOpenBound(FREE, perHost, d, 3 + 0.5);
    t.diagnostic(`${JSON.stringify({ ...r, timeline: undefined })} bound ${bound.toFixed(1)}`);
    assert.ok(r.overAdmitted <= bound, `over-admitted ${r.overAdmitted} > bound ${bound}`);
    assert.ok(r.fallbackAdmitted >= 1, 'the cut host decided by its failure policy (open)');
    assert.deepEqual(statusesOnly(r, ['200', '429']), [], 'open policy: only 200 and 429');
    assert.equal(r.storeCounted, r.storeAdmitted, 'the store counts what it admitted: no abandoned call charged after the heal');
    assert.ok(Number.isFinite(r.recoverMs) && r.recoverMs < 2000, `breaker closed ${r.recoverMs} ms after the heal, on its own probes`);
  });

  it('200 ms of latency, then 10% loss, between one gateway host and Redis: within the bound, no 5xx, the store exact', async (t: TestContext) => {
    const g1 = fleet.gatewayHosts()[0]!;
    const d = await processes();
    const r = await runScenario(fleet, {
      name: 'latency-loss', plan: FREE, planName: 'free', ratePerS: RATE, durationMs: 9000,
      faults: [
        { atMs: 1500, forMs: 3000, inject: (f) => latency(f.hosts, [g1], f.redisHosts(), 200) },
        { atMs: 5000, forMs: 3000, inject: (f) => loss(f.hosts, [g1], f.redisHosts(), 0.1) },
      ],
    });
    results.push(r);
    const bound = failOpenBound(FREE, d / fleet.gateways.length, d, 6.5);
    t.diagnostic(`${JSON.stringify({ ...r, timeline: undefined })} bound ${bound.toFixed(1)}`);
    assert.ok(r.overAdmitted <= bound, `over-admitted ${r.overAdmitted} > bound ${bound}`);
    assert.deepEqual(statusesOnly(r, ['200', '429']), [], 'open policy: no 5xx, no lost answer');
    assert.equal(r.storeCounted, r.storeAdmitted, 'late answers given back, expired calls took nothing');
  });

  it('the master cut from the sentinel majority is failed over while gateways on both sides send; every gateway ends on the new master', async (t: TestContext) => {
    const [g1, g2, g3] = fleet.gatewayHosts();
    const oldMaster = fleet.redisOn((await fleet.masterIp())!);
    const rest = fleet.redisHosts().filter((h) => h !== oldMaster.host);
    let switchedAt = NaN;
    const r = await runScenario(fleet, {
      name: 'failover', plan: FREE, planName: 'free', ratePerS: RATE, durationMs: 10_000,
      faults: [{ atMs: 1500, forMs: 5000, inject: (f) => partition(f.hosts, [oldMaster.host, g1!], [...rest, g2!, g3!]) }],
      during: async (f, start) => {
        // Time until every gateway host holds a connection to the new master and none to the old one.
        const healAt = start + 6500;
        const all = await pollUntil(async () => {
          const now = await f.masterIp();
          if (now === undefined || now === oldMaster.host.ip || Date.now() < healAt) return undefined;
          const onNew = await f.connectedGatewayHosts(now);
          const onOld = await f.connectedGatewayHosts(oldMaster.host.ip);
          return onNew.size === f.gateways.length && onOld.size === 0 ? Date.now() : undefined;
        }, 20_000, 100);
        switchedAt = all.value ?? NaN;
        return { allOnNewMasterAfterHealMs: switchedAt - healAt };
      },
    });
    results.push(r);
    const lost = r.storeAdmitted - r.storeCounted;
    t.diagnostic(`${JSON.stringify({ ...r, timeline: undefined })} lost ${lost}`);
    assert.ok(Number.isFinite(switchedAt), 'every gateway uses the new master after the heal');
    assert.notEqual(await fleet.masterIp(), oldMaster.host.ip, 'the sentinels failed over');
  });
});

export { results };
