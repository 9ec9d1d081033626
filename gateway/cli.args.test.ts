import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { CLI } from '../test/harness/gateway.js';

// The gateway's command line (util.parseArgs): a mistake is named on stderr with exit 2
// and nothing starts; --help is exit 0.

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function sluice(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

describe('sluice command line', () => {
  const mistakes: [string[], RegExp][] = [
    [['--bogus'], /Unknown option '--bogus'/],
    [['--config'], /--config.*argument missing/],
    [['config/sluice.yaml'], /Unexpected argument 'config\/sluice\.yaml'/],
    [['--check', 'config/sluice.yaml', '--workers', '0'], /--workers: expected a whole number from 1 to 999/],
    [['--config', 'a.yaml', '--check', 'b.yaml'], /--config or --check, not both/],
    [[], /needs --config FILE or --check FILE/],
  ];
  for (const [args, message] of mistakes) {
    it(`exits 2 on ${JSON.stringify(args.join(' '))}, saying why`, async () => {
      const r = await sluice(args);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.match(r.stderr, /usage:/);
      assert.equal(r.stdout, '');
    });
  }

  it('--help and -h print the usage and exit 0', async () => {
    for (const flag of ['--help', '-h']) {
      const r = await sluice([flag]);
      assert.equal(r.code, 0, flag);
      assert.match(r.stderr, /sluice config schema/);
    }
  });

  it('--check FILE --workers N still checks', async () => {
    const r = await sluice(['--check', 'config/sluice.yaml', '--workers', '2']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /config\/sluice\.yaml: ok/);
  });

  it('config schema prints the committed JSON Schema; anything else under config is exit 2', async () => {
    const r = await sluice(['config', 'schema']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, readFileSync(`${ROOT}config/sluice.schema.json`, 'utf8'));
    const bad = await sluice(['config', 'show']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /sluice config schema/);
  });
});
