import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { ADMIN_TOKEN, testConfig } from '../../test/harness/config.js';
import { startEchoBackend } from '../../test/harness/echo-backend.js';
import { spawnGateway } from '../../test/harness/gateway.js';
import { startRedis } from '../../test/harness/redis.js';
import { runLoadtest } from './run.js';
import { parseScenario } from './scenario.js';
import { SUITE_GENERATOR } from './suite-generator.js';

// What a request costs, against a gateway on a real Redis: keys made through the admin
// API, the run's commands and CPU from INFO, and per-class probes after it. The figures
// are the gateway's design: at most one EVALSHA per admitted request, fewer for a refusal
// the deny cache remembers, one key lookup for an unknown key.

test('--redis: commands per request split admitted / 429 / 401, Redis and gateway CPU per request', async (t) => {
  const redis = await startRedis();
  const backend: Server = await startEchoBackend('127.0.0.1', 0);
  const gw = await spawnGateway(testConfig({
    upstreams: [`http://127.0.0.1:${(backend.address() as AddressInfo).port}`],
    // A store call slower than timeout_ms fails open to a local bucket, which over-admits
    // (the oracle caught exactly that with the 50 ms default beside two CPU hogs): this
    // test is about cost, so Redis gets all the time it needs.
    store: { kind: 'redis', url: redis.url, timeout_ms: 5000 },
    plans: { roomy: { rate: 100, burst: 100 }, tight: { rate: 1, burst: 2 } },
    log: { access: false },
    // Daily usage is written in batches, one script per customer-day each flush_ms
    // (docs/credits.md), not per request: a flush in a short probe would be charged to
    // its few requests. No flush while this test measures.
    billing: { usage: { flush_ms: 60_000 } },
  }));
  t.after(async () => { await gw.stop(); backend.close(); await redis.stop(); });
  const scenario = parseScenario(stringify({
    name: 'cost', target: gw.url, admin: { url: gw.adminUrl, token: ADMIN_TOKEN }, duration_s: 2,
    arrival: { profile: 'constant', rate: 50 }, generator: SUITE_GENERATOR,
    groups: [{ name: 'roomy', weight: 3, keys: { count: 3, plan: 'roomy' }, plan: { rate: 100, burst: 100 }, request: { path: '/v1/ping' } }],
    abusive: [{ name: 'tight', weight: 2, keys: { count: 1, plan: 'tight' }, plan: { rate: 1, burst: 2 }, request: { path: '/v1/ping' } }],
    invalid_keys: { weight: 0.5, count: 5, request: { path: '/v1/ping' } },
  }), mkdtempSync(join(tmpdir(), 'sluice-loadtest-cost-')));

  const result = await runLoadtest({ scenario, targets: [{ url: gw.url, admin: { url: gw.adminUrl, token: ADMIN_TOKEN } }], redisUrl: redis.url, progress: null });
  const r = result.targets[0]!;
  const verdicts = JSON.stringify(r.groups.map((g) => [g.group, g.overAdmittedBy, g.wronglyRefused, g.worstKeys.slice(0, 2)]));
  assert.equal(r.overAdmitted, 0, verdicts);
  assert.equal(r.wronglyRefused, 0, verdicts);
  assert.ok(r.status.s429 > 20, `${r.status.s429} refused`);
  const c = result.cost?.redis;
  assert.ok(c !== undefined, 'redis cost measured');
  t.diagnostic(`whole run ${c.commandsPerRequest.toFixed(2)} commands/request, ${c.cpuUsPerRequest.toFixed(1)} µs Redis CPU; `
    + c.probes.map((p) => `${p.class} ${p.commandsPerRequest.toFixed(2)} ${JSON.stringify(p.byCommand)}`).join('; '));
  assert.ok(c.byCommand.evalsha !== undefined && c.byCommand.evalsha > 0, JSON.stringify(c.byCommand));
  assert.ok(c.byCommand.info === undefined, 'the measurement does not count itself');
  assert.ok(c.cpuUsPerRequest > 0);
  const probe = (cls: string): (typeof c.probes)[number] => c.probes.find((p) => p.class === cls)!;
  assert.deepEqual(c.probes.map((p) => p.class), ['admitted', '429', '401']);
  assert.equal(probe('admitted').ofClass, probe('admitted').requests);
  // A fresh key: one lookup, then at most one EVALSHA per request (a busy subject's
  // tokens may come in leased batches; the gateway's own store probe may add one).
  // INFO commandstats also counts the commands the script runs inside Redis, so an
  // admission costs several commands but one round trip at most.
  const evals = probe('admitted').byCommand.evalsha ?? 0;
  assert.ok(evals >= 1 && evals <= probe('admitted').requests + 2, JSON.stringify(probe('admitted').byCommand));
  assert.ok(probe('admitted').commandsPerRequest > 1);
  // The deny cache answers most repeated refusals without Redis.
  assert.ok(probe('429').ofClass >= probe('429').requests - 2, `${probe('429').ofClass} of the 429 probe refused`);
  assert.ok(probe('429').commandsPerRequest < probe('admitted').commandsPerRequest);
  // Every unknown key is looked up once (then negatively cached; the probe never repeats
  // one). The probe counts whatever Redis ran in its window, so work the gateway does on
  // its own can add commands that are no request's: a CI run saw one script (EVAL, with
  // the TIME, HMGET, HSET and PEXPIRE it ran: a lease of the admitted probe going back
  // when it expired) land in it. The lookups are what the 401s cost.
  assert.equal(probe('401').ofClass, probe('401').requests);
  const lookups = probe('401').byCommand.hgetall ?? 0;
  assert.ok(lookups >= probe('401').requests && lookups <= probe('401').requests + 2, JSON.stringify(probe('401').byCommand));
  // The gateway's pid came from its /healthz; its CPU from /proc.
  assert.deepEqual(result.cost?.gateway?.pids, [gw.pid]);
  assert.ok(result.cost!.gateway!.cpuUsPerRequest > 0);
});
