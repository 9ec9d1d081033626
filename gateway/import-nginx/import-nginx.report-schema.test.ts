// gateway/import-nginx/report.schema.json is the contract of `--report`: it must be what
// the code generates, and real reports (fixtures, an OpenResty config, a parse error)
// must pass it with a plain ajv, as any consumer of the file would check them.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { Ajv } from 'ajv';
import { CLI } from '../../test/harness/gateway.js';
import { publishedReportSchema } from './report-schema.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SCHEMA_FILE = join(ROOT, 'gateway/import-nginx/report.schema.json');
const FIXTURES = join(ROOT, 'gateway/import-nginx/fixtures');
const out = mkdtempSync(join(tmpdir(), 'sluice-report-schema-'));
after(() => rmSync(out, { recursive: true, force: true }));

function report(nginxConf: string): Promise<unknown> {
  const file = join(out, `r${Math.random().toString(36).slice(2)}.json`);
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, 'import-nginx', nginxConf, '--out', join(out, 'x.yaml'), '--report', file], { timeout: 15_000 }, () => {
      try { resolve(JSON.parse(readFileSync(file, 'utf8'))); } catch (err) { reject(err); }
    });
  });
}

describe('import-nginx report: report.schema.json', () => {
  it('is what the code generates (regenerate: npm run build && bin/sluice import-nginx --report-schema > gateway/import-nginx/report.schema.json)', () => {
    assert.ok(readFileSync(SCHEMA_FILE, 'utf8') === `${JSON.stringify(publishedReportSchema(), null, 2)}\n`, 'gateway/import-nginx/report.schema.json is out of date');
  });

  it('real reports pass it with a plain ajv; a report with an unknown field does not', async () => {
    const ajv = new Ajv({ allErrors: true, strict: false });
    const validate = ajv.compile(JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as object);
    const bad = join(out, 'bad.conf');
    writeFileSync(bad, 'http { server { listen 80 }\n');
    const lua = join(out, 'lua.conf');
    writeFileSync(lua, 'http { server { listen 8080; location / { access_by_lua_block { ngx.exit(403) } proxy_pass http://127.0.0.1:9; } } }\n');
    for (const f of [join(FIXTURES, 'api-edge/nginx.conf'), join(FIXTURES, 'multi-include/nginx.conf'), join(FIXTURES, 'balancing/nginx.conf'), bad, lua]) {
      const r = await report(f) as Record<string, unknown>;
      assert.ok(validate(r), `${f}: ${JSON.stringify(validate.errors)}`);
      assert.equal(r.schema_version, 1);
    }
    const r = await report(join(FIXTURES, 'api-edge/nginx.conf')) as Record<string, unknown>;
    assert.equal(validate({ ...r, surprise: 1 }), false);
    assert.equal(validate({ ...r, counts: { ...(r.counts as object), emulated: -1 } }), false);
  });
});
