import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { stringify } from 'yaml';
import { startEchoBackend } from '../../test/harness/echo-backend.js';
import { CLI, spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { sha256, testConfig } from '../../test/harness/config.js';
import type { LoadtestResult } from './result.js';
import { SUITE_GENERATOR } from './suite-generator.js';

// The oracle against a real gateway, both ways: a plan enforced exactly passes with no
// over-admission and no wrong refusal; the same plan in shadow mode (limits judged but
// not applied) lets everything through, and the oracle must catch it and fail the run.

const PLAN = { rate: 5, burst: 5 };
const RATE = 20;
const SECONDS = 3;

let backend: Server;
let enforced: GatewayProcess;
let shadow: GatewayProcess;
const dir = mkdtempSync(join(tmpdir(), 'sluice-loadtest-shadow-'));

before(async () => {
  backend = await startEchoBackend('127.0.0.1', 0);
  const upstream = `http://127.0.0.1:${(backend.address() as AddressInfo).port}`;
  const cfg = (shadowMode: boolean): Record<string, unknown> => testConfig({
    upstreams: [upstream],
    plans: { metered: { ...PLAN, shadow: shadowMode } },
    keys: [{ digest: sha256('lt-key-1'), customer: 'lt-1', plan: 'metered' }],
    log: { access: false },
  });
  [enforced, shadow] = await Promise.all([spawnGateway(cfg(false)), spawnGateway(cfg(true))]);
  writeFileSync(join(dir, 'keys.txt'), 'lt-key-1\n');
});

after(async () => {
  await Promise.all([enforced?.stop(), shadow?.stop()]);
  backend?.close();
});

function scenario(target: string): string {
  const file = join(dir, `scenario-${target.split(':').pop()}.yaml`);
  writeFileSync(file, stringify({
    name: 'shadow-control', target, duration_s: SECONDS,
    arrival: { profile: 'constant', rate: RATE }, generator: SUITE_GENERATOR,
    groups: [{ name: 'metered', keys: { file: 'keys.txt' }, plan: PLAN, request: { method: 'GET', path: '/v1/ping' } }],
  }));
  return file;
}

/** `sluice loadtest FILE --out DIR/NAME ...`: its exit code, output and result.json. */
async function run(file: string, name: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string; result: LoadtestResult }> {
  const out = join(dir, name);
  const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [CLI, 'loadtest', file, '--quiet', '--out', out, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
  return { ...r, result: JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as LoadtestResult };
}

test('an enforced plan: every 429 right, nothing over-admitted, exit 0', async () => {
  const r = await run(scenario(enforced.url), 'enforced');
  const { result } = r;
  const t = result.targets[0]!;
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.equal(t.sent, RATE * SECONDS);
  assert.equal(t.overAdmitted, 0);
  assert.equal(t.wronglyRefused, 0);
  assert.equal(t.headerIssues, 0, JSON.stringify(t.headerIssueExamples));
  // 5 at once, then 5 a second: about 20 of 60 admitted, the rest refused.
  assert.ok(t.status.s429 >= 30, `only ${t.status.s429} refused`);
  assert.ok(t.groups[0]!.admitted <= t.groups[0]!.allowed, `${t.groups[0]!.admitted} admitted, ${t.groups[0]!.allowed} allowed`);
  assert.deepEqual(result.gates.map((g) => [g.expr, g.passed]), [['over_admitted==0', true]]);
});

test('the shadow run judged against the enforced run\'s saved result.json: over-admission is a regression', async () => {
  const r = await run(scenario(shadow.url), 'shadow-vs-enforced', '--compare', join(dir, 'enforced', 'result.json'));
  const { result } = r;
  assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
  assert.equal(result.regression?.baseline, join(dir, 'enforced', 'result.json'));
  const over = result.regression!.verdicts.find((v) => v.metric === 'over_admitted')!;
  assert.deepEqual([over.baseline, over.verdict], [0, 'regression']);
  assert.equal(over.now, result.targets[0]!.overAdmitted);
  assert.match(r.stdout, /vs baseline over_admitted: 0\.000 -> \d+\.000 \(\+\d+\.000, noise floor none\): regression/);
});

test('the same plan in shadow mode: the oracle reports the over-admission and the run fails (exit 1)', async () => {
  const r = await run(scenario(shadow.url), 'shadow');
  const { result } = r;
  const t = result.targets[0]!;
  assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
  assert.equal(t.status.s429, 0, 'shadow mode refuses nothing');
  assert.equal(t.groups[0]!.admitted, RATE * SECONDS);
  // Allowed: burst 5 + 5/s over the ~3 s the key was active, about 20; the rest is over.
  assert.ok(t.overAdmitted >= 30 && t.overAdmitted <= RATE * SECONDS - PLAN.burst, `over-admitted ${t.overAdmitted}`);
  assert.deepEqual(t.groups[0]!.overAdmittedBy, { rate: t.overAdmitted });
  assert.equal(result.gates[0]!.passed, false);
  assert.match(r.stdout, /FAIL {2}over_admitted==0/);
});
