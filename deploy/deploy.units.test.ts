import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

test('the backend unit sets the tuning the backend would re-exec itself for', () => {
  const text = unitText('sluice-backend@.service');
  const env: NodeJS.ProcessEnv = Object.fromEntries(directives(text, 'Environment').map((kv) => kv.split(/=(.*)/s).slice(0, 2)));
  const exec = directives(text, 'ExecStart')[0]!.replaceAll('%i', '7001').split(/\s+/);
  assert.equal(exec[0], '/opt/sluice/bin/sluice-backend');
  const cfg = parseBackendConfig(exec.slice(1), env);
  const t = tuning(cfg, env);
  assert.equal(t.reexecNeeded, false, 'with --no-reexec the unit must already hold the allocator and UV_THREADPOOL_SIZE settings');
  assert.equal(t.uvThreadpoolSize, cfg.concurrency + 4);
  assert.equal(cfg.reexec, false);
  assert.equal(cfg.port, 7001);
});
