import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { PLACEHOLDER } from '../../common/config-text.js';
import { publishedConfigSchema } from './json-schema.js';
import { parseConfig } from './load.js';

// config/sluice.schema.json is what editors validate against; it must be what the code
// generates, and every config the repository ships must pass it and the loader.

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SCHEMA_FILE = join(ROOT, 'config/sluice.schema.json');
const REGENERATE = 'npm run build && bin/sluice config schema > config/sluice.schema.json';
const HEADER = /^# yaml-language-server: \$schema=(\S+)\n/;
// Values for the placeholders that have no default, as a deployment would set them.
const ENV = { REDIS_URL: 'redis://127.0.0.1:6379', SLUICE_UPSTREAM: 'http://127.0.0.1:18080' };

/** Every YAML file in the repository that is a gateway config (it has routes). */
function shippedConfigs(dir = ROOT): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return ['node_modules', 'dist', '.git'].includes(e.name) ? [] : shippedConfigs(path);
    if (!/\.ya?ml$/.test(e.name)) return [];
    const doc = parse(readFileSync(path, 'utf8')) as unknown;
    return typeof doc === 'object' && doc !== null && 'routes' in doc ? [relative(ROOT, path)] : [];
  });
}

/** A plain ajv with the committed file: what an editor does, no Sluice code involved. */
function editorCheck(): (doc: unknown) => string[] {
  const ajv = new Ajv({ allErrors: true, strict: false });
  const validate = ajv.compile(JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as object);
  return (doc) => (validate(doc) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''}`));
}

describe('config schema: config/sluice.schema.json', () => {
  it('is what the code generates', () => {
    const generated = `${JSON.stringify(publishedConfigSchema(), null, 2)}\n`;
    assert.ok(readFileSync(SCHEMA_FILE, 'utf8') === generated, `config/sluice.schema.json is out of date; regenerate it: ${REGENERATE}`);
  });

  const files = shippedConfigs();
  it('finds the shipped configs', () => {
    for (const f of ['config/sluice.yaml', 'config/examples/redis.yaml', 'load-tests/configs/anchors.yaml', 'load-tests/configs/scaling.yaml']) {
      assert.ok(files.includes(f), `${f} in ${files.join(', ')}`);
    }
  });

  const check = editorCheck();
  for (const f of files) {
    it(`${f}: names the schema on its first line, passes it, and loads`, () => {
      const text = readFileSync(join(ROOT, f), 'utf8');
      const header = HEADER.exec(text);
      assert.ok(header !== null, `${f} must start with "# yaml-language-server: $schema=<path to config/sluice.schema.json>"`);
      assert.equal(resolve(dirname(join(ROOT, f)), header[1]!), SCHEMA_FILE, `${f}: the $schema path`);
      assert.deepEqual(check(parse(text)), [], `${f} against the JSON schema`);
      // Comment lines may mention ${ENV} syntax; the loader never expands them.
      for (const m of text.replace(/^\s*#.*$/gm, '').matchAll(PLACEHOLDER)) {
        if (m[2] === undefined) assert.ok(m[1]! in ENV, `${f}: \${${m[1]}} has no default; give this test a value for it`);
      }
      assert.doesNotThrow(() => parseConfig(text, ENV), f);
    });
  }

  it('flags in an editor what the loader refuses, and takes ${ENV} and shorthands where the loader does', () => {
    const base = { plans: { free: { rate: 5 } }, upstreams: { main: { targets: ['http://127.0.0.1:7001'] } }, routes: [{ prefix: '/', upstream: 'main' }] };
    assert.deepEqual(check(base), []);
    const ok = [
      { server: { port: '${PORT:-8080}', trust_forwarded: '${TRUST}' } },
      { store: { kind: '${STORE_KIND:-memory}', tls: true, url: '${REDIS_URL}' } },
      { upstreams: { main: { targets: [{ url: 'http://127.0.0.1:7001', weight: 2 }], discover: true } } },
      { customers: { c: { overrides: { rate: 0, burst: 0 } } } },
    ];
    for (const extra of ok) assert.deepEqual(check({ ...base, ...extra }), [], JSON.stringify(extra));
    const bad = [
      { server: { prot: 1 } },
      { server: { port: 'eighty' } },
      { customers: { c: { overrides: { quota_day: 1.5 } } } },
      { customers: { c: { overrides: { burst: 0.5 } } } },
      { log: { level: 'loud' } },
      { routes: [{ prefix: 'v1', upstream: 'main' }] },
    ];
    for (const extra of bad) assert.notDeepEqual(check({ ...base, ...extra }), [], JSON.stringify(extra));
  });
});
