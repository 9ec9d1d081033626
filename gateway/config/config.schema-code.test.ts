import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { documentSchema } from '../../common/schema-check.js';
import { schemaValidator } from '../../common/schema-code.js';
import { SluiceConfigSchema } from './schema.js';

// The config's validator as every process after the first runs it, from the code the first
// one kept (common/schema-code.ts): the same verdicts, errors and defaults as ajv's compile.

const dir = mkdtempSync(join(tmpdir(), 'sluice-config-code-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('the kept code and a fresh compile agree on a config with problems of every kind', () => {
  const schema = documentSchema(SluiceConfigSchema);
  const compiled = schemaValidator(schema, dir);
  const loaded = schemaValidator(schema, dir);
  assert.notEqual(loaded, compiled, 'the second one came from the file');
  const bad = (): Record<string, unknown> => ({
    server: { port: 'eighty' }, admin: { port: 70_000 }, store: { kind: 'redis' }, plans: { free: { rate: -1 } },
    upstreams: { images: { targets: [] } }, routes: [{ match: { prefix: '/x' } }], nonsense: true,
  });
  const [a, b] = [bad(), bad()];
  assert.equal(compiled(a), false);
  assert.equal(loaded(b), false);
  assert.ok((compiled.errors?.length ?? 0) >= 5, JSON.stringify(compiled.errors));
  assert.deepEqual(loaded.errors, compiled.errors);
  assert.deepEqual(b, a, 'the same defaults filled in');
});
