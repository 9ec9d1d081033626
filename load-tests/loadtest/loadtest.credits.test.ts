import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { startBackend } from '../../test/harness/backend.js';
import { CLI, spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import type { LoadtestResult } from './result.js';
import { SUITE_GENERATOR } from './suite-generator.js';

// The shipped credits scenario (load-tests/scenarios/credits-mix.yaml: cheap and dear
// operations on one plan priced in units) against the shipped gateway config for it
// (load-tests/configs/credits.yaml), three ways:
//   - as shipped: every answer right in units, exit 0;
//   - the plan in shadow mode (judged, not enforced): the oracle fails the run;
//   - the plan without its costs (a gateway counting requests): the dear requests it lets
//     through are over-admitted in units, and the oracle fails the run too.

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CONFIG = join(ROOT, 'load-tests/configs/credits.yaml');
const SCENARIO = join(ROOT, 'load-tests/scenarios/credits-mix.yaml');
const dir = mkdtempSync(join(tmpdir(), 'sluice-loadtest-credits-'));

let backend: Awaited<ReturnType<typeof startBackend>>;
const gws: Record<'enforced' | 'shadow' | 'requests', GatewayProcess | undefined> = { enforced: undefined, shadow: undefined, requests: undefined };

before(async () => {
  backend = await startBackend();
  const env = { SLUICE_PORT: '0', SLUICE_ADMIN_PORT: '0', SLUICE_BACKEND_1: backend.url };
  const counting = parse(readFileSync(CONFIG, 'utf8')) as { plans: { metered: Record<string, unknown> } };
  delete counting.plans.metered.costs;
  // One after another: on a busy host, processes started together can each miss their start-up deadline.
  gws.enforced = await spawnGateway(readFileSync(CONFIG, 'utf8'), env);
  gws.shadow = await spawnGateway(readFileSync(CONFIG, 'utf8'), { ...env, SLUICE_SHADOW: 'true' });
  gws.requests = await spawnGateway(stringify(counting), env);
  // The shipped scenario with the suite's generator limits (a busy CI host); it names no file, so it runs from anywhere.
  const s = parse(readFileSync(SCENARIO, 'utf8')) as Record<string, unknown>;
  writeFileSync(join(dir, 'credits-mix.yaml'), stringify({ ...s, generator: SUITE_GENERATOR }));
});

after(async () => {
  await Promise.all(Object.values(gws).map((g) => g?.stop()));
  await backend?.close();
});

async function run(gw: GatewayProcess, name: string): Promise<{ code: number; out: string; result: LoadtestResult }> {
  const out = join(dir, name);
  const file = join(dir, 'credits-mix.yaml');
  const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [CLI, 'loadtest', file, '--quiet', '--target', gw.url, '--admin', gw.adminUrl, '--out', out],
      { timeout: 60_000, env: { ...process.env, SLUICE_ADMIN_TOKEN: 'demo-admin' } },
      (err, stdout, stderr) => resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr }));
  });
  return { code: r.code, out: `${r.stdout}\n${r.stderr}`, result: JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as LoadtestResult };
}

test('the plan as shipped: every admission and refusal right for its price in units, exit 0', async () => {
  const { code, out, result } = await run(gws.enforced!, 'enforced');
  const t = result.targets[0]!;
  const g = t.groups[0]!;
  assert.equal(code, 0, out);
  assert.deepEqual([t.overAdmitted, t.wronglyRefused, t.headerIssues], [0, 0, 0], out);
  assert.ok(t.status.s429 > 20, `only ${t.status.s429} refused: the plan did not bind`);
  // Cheap requests are admitted where dear ones are refused: more requests than units / 9.
  assert.ok(g.units > g.admitted, `${g.units} units in ${g.admitted} requests`);
  assert.ok(g.units <= g.allowed, `${g.units} units admitted, ${g.allowed} allowed`);
  assert.match(out, /metered\s+normal\s+80\s+\d+\s+\d+\s+\d+/);
});

test('the same plan in shadow mode: everything passes, the oracle reports the over-admission and fails the run', async () => {
  const { code, out, result } = await run(gws.shadow!, 'shadow');
  const t = result.targets[0]!;
  assert.equal(code, 1, out);
  assert.equal(t.status.s429, 0);
  assert.ok(t.overAdmitted > 20, `over-admitted ${t.overAdmitted}`);
  assert.match(out, /FAIL {2}over_admitted==0/);
});

test('a gateway that counts requests, not units: the dear requests it lets through are over-admitted, exit 1', async () => {
  const { code, out, result } = await run(gws.requests!, 'requests');
  const t = result.targets[0]!;
  assert.equal(code, 1, out);
  assert.ok(t.overAdmitted > 0, `over-admitted ${t.overAdmitted}`);
  assert.ok(t.groups[0]!.units > t.groups[0]!.allowed, `${t.groups[0]!.units} units admitted, ${t.groups[0]!.allowed} allowed`);
  assert.deepEqual(Object.keys(t.groups[0]!.overAdmittedBy), ['rate']);
});
