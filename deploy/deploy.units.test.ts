import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseBackendConfig } from '../backends/service/config.js';
import { tuning } from '../backends/service/tuning.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/$/, '');
const UNITS = join(ROOT, 'deploy', 'systemd');
const unitText = (name: string): string => readFileSync(join(UNITS, name), 'utf8');

/** Values of one key in a unit's [Service] section, in order. */
function directives(text: string, key: string): string[] {
  return text.split('\n').flatMap((l) => (l.startsWith(`${key}=`) ? [l.slice(key.length + 1)] : []));
}

const hasSystemdAnalyze = spawnSync('systemd-analyze', ['--version']).error === undefined;

// The units name /opt/sluice; verify checks that ExecStart's program exists, so the
// copies verified here point at this checkout instead.
test('systemd-analyze verify accepts both units', { skip: hasSystemdAnalyze ? false : 'systemd-analyze not installed on this host (systemd package); the unit files are not verified' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-units-'));
  try {
    const copies = [['sluice.service', 'sluice.service'], ['sluice-backend@.service', 'sluice-backend@7001.service']].map(([from, to]) => {
      const p = join(dir, to!);
      writeFileSync(p, unitText(from!).replaceAll('/opt/sluice', ROOT));
      return p;
    });
    const r = spawnSync('systemd-analyze', ['verify', ...copies], { cwd: dir, encoding: 'utf8' });
    // Unknown keys are only warnings (exit 0): any output at all is a failure.
    assert.equal(`${r.stdout}${r.stderr}`, '');
    assert.equal(r.status, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** The backend unit's Environment= lines, and its ExecStart for instance `port`. */
function backendUnit(port: string): { env: NodeJS.ProcessEnv; exec: string[] } {
  const text = unitText('sluice-backend@.service');
  const env: NodeJS.ProcessEnv = Object.fromEntries(directives(text, 'Environment').map((kv) => kv.split(/=(.*)/s).slice(0, 2)));
  return { env, exec: directives(text, 'ExecStart')[0]!.replaceAll('%i', port).split(/\s+/) };
}

test('the backend unit sets the tuning the backend would re-exec itself for', () => {
  const { env, exec } = backendUnit('7001');
  assert.equal(exec[0], '/opt/sluice/bin/sluice-backend');
  const cfg = parseBackendConfig(exec.slice(1), env);
  assert.equal(cfg.heapInitialMb, 128);
  // bin/sluice-backend gives node the heap flag from SLUICE_BACKEND_HEAP_INITIAL_MB.
  const t = tuning(cfg, env, [`--initial-old-space-size=${env.SLUICE_BACKEND_HEAP_INITIAL_MB}`]);
  assert.equal(t.reexecNeeded, false, 'with --no-reexec the unit must already hold the allocator, UV_THREADPOOL_SIZE and heap settings');
  assert.equal(t.uvThreadpoolSize, cfg.concurrency + 4);
  assert.equal(cfg.reexec, false);
  assert.equal(cfg.port, 7001);
});

test('the backend unit\'s command runs as one process with the unit\'s tuning', async () => {
  // Port 0 for instance 7001, and a results directory of its own: the rest as the unit has it.
  const { env, exec } = backendUnit('0');
  const results = mkdtempSync(join(tmpdir(), 'sluice-unit-results-'));
  const child = spawn(exec[0]!.replace('/opt/sluice', ROOT), exec.slice(1), {
    env: { ...env, PATH: process.env.PATH, SLUICE_BACKEND_RESULTS_DIR: results },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  try {
    const listening = await new Promise<Record<string, unknown>>((resolve, reject) => {
      createInterface({ input: child.stdout }).on('line', (line) => {
        if (line.includes('"backend listening"')) resolve(JSON.parse(line) as Record<string, unknown>);
      });
      child.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)));
    });
    // bin/sluice-backend and bin/sluice-node exec: the unit's main PID is the backend.
    assert.equal(listening.pid, child.pid);
    assert.equal(listening.uv_threadpool_size, 8);
    assert.equal(listening.concurrency, 4);
    assert.equal(listening.results, results);
    assert.equal(listening.allocator, 'jemalloc (LD_PRELOAD)');
    assert.equal(listening.node_flags, '--initial-old-space-size=128', 'V8\'s initial old space, without a re-exec');
  } finally {
    child.kill('SIGTERM');
    if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
    rmSync(results, { recursive: true, force: true });
  }
});
