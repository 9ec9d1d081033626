// The corpus (gateway/import-nginx/corpus/): nginx configs written as deployments write
// them, one construct each and then mixes. Each is imported with the real CLI, accepted
// by `sluice --check`, and run through `--verify` against a real nginx (with its Lua
// module): the same generated requests to both, and no difference the import report
// does not list.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { CLI } from '../../test/harness/gateway.js';
import type { ImportReport } from './report.js';

const CORPUS = fileURLToPath(new URL('../../../gateway/import-nginx/corpus/', import.meta.url));
const out = mkdtempSync(join(tmpdir(), 'sluice-import-corpus-'));
after(() => rmSync(out, { recursive: true, force: true }));

interface Run { code: number; stdout: string; stderr: string }

function run(cmd: string, args: string[], timeout = 180_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

/** A copy of a corpus config with the certificates it names made by openssl (self-signed, throwaway). */
async function prepared(name: string): Promise<string> {
  const dir = join(out, name);
  cpSync(join(CORPUS, name), dir, { recursive: true });
  const texts = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? texts(join(d, e.name)) : [readFileSync(join(d, e.name), 'utf8')]));
  const certs = new Set<string>();
  for (const t of texts(dir)) for (const m of t.matchAll(/ssl_certificate\s+([^;\s]+);/g)) certs.add(m[1]!);
  for (const c of certs) {
    const cert = join(dir, c);
    mkdirSync(dirname(cert), { recursive: true });
    const r = await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=corpus', '-keyout', cert.replace(/\.pem$/, '.key'), '-out', cert]);
    assert.equal(r.code, 0, r.stderr);
  }
  return join(dir, 'nginx.conf');
}

const NAMES = readdirSync(CORPUS, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();

describe('import-nginx corpus: import, sluice --check, --verify against a real nginx', () => {
  it('has one config per construct and the mixes', () => {
    for (const n of ['proxy-uri', 'return-redirects', 'precedence', 'access', 'headers', 'websocket', 'tls-sni', 'real-ip', 'body-errors', 'upstreams', 'lua-limiters', 'mix-app', 'mix-multi-server', 'mix-openresty']) {
      assert.ok(NAMES.includes(n), `corpus/${n} is missing`);
    }
  });

  for (const name of NAMES) {
    it(`${name}: 0 differences the report does not list`, async () => {
      const conf = await prepared(name);
      const yaml = join(out, `${name}.yaml`);
      const reportFile = join(out, `${name}.report.json`);
      const r = await run(process.execPath, [CLI, 'import-nginx', conf, '--out', yaml, '--report', reportFile, '--verify', '--allow-unenforced']);
      const report = JSON.parse(readFileSync(reportFile, 'utf8')) as ImportReport;
      assert.deepEqual(report.errors, [], r.stderr.slice(-3000));
      const v = report.verify!;
      const unlisted = v.differences.filter((d) => d.listed_by === undefined).slice(0, 20).map((d) => `${d.request}: ${d.field}: nginx ${d.nginx}, sluice ${d.sluice} (${d.location ?? d.server})`);
      assert.deepEqual(unlisted, [], `${name}: unlisted differences`);
      assert.equal(r.code, 0, r.stderr.slice(-3000));
      assert.ok(v.requests >= 20, `${name}: only ${v.requests} requests generated`);
      assert.equal(report.counts.verified, v.same);
      const check = await run(process.execPath, [CLI, '--check', yaml]);
      assert.equal(check.code, 0, check.stderr);
    });
  }
});
