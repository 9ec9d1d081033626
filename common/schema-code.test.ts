import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Type } from '@sinclair/typebox';
import { documentSchema } from './schema-check.js';
import { schemaValidator } from './schema-code.js';

// A validator's code is generated once and kept, named by its schema's hash: later calls,
// in this process or another, load it instead of generating it again.

const dir = mkdtempSync(join(tmpdir(), 'sluice-schema-code-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// Defaults, a union, limits and closed objects: what the config schema uses
// (gateway/config/config.schema-code.test.ts runs the same check on the config schema).
const config = documentSchema(Type.Object({
  port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
  store: Type.Union([
    Type.Object({ kind: Type.Literal('memory') }, { additionalProperties: false }),
    Type.Object({ kind: Type.Literal('redis'), url: Type.String(), timeout_ms: Type.Integer({ minimum: 1 }) }, { additionalProperties: false }),
  ]),
  plans: Type.Record(Type.String(), Type.Object({ rate: Type.Number({ exclusiveMinimum: 0 }), burst: Type.Integer({ default: 1 }) })),
}, { additionalProperties: false }));
/** A document with a wrong type, a value out of range, a missing field and an unknown one. */
const bad = (): Record<string, unknown> => ({ port: 'eighty', store: { kind: 'redis', timeout_ms: 0.5 }, plans: { a: { rate: 0 }, b: {} }, nonsense: true });

test('the first call writes the code; the code it wrote gives the same verdicts, errors and defaults', () => {
  const compiled = schemaValidator(config, dir);
  assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.cjs')).length, 1, 'one file for the schema');
  const loaded = schemaValidator(config, dir);
  assert.notEqual(loaded, compiled, 'the second call loaded the file');
  const [a, b] = [bad(), bad()];
  assert.equal(compiled(a), false);
  assert.equal(loaded(b), false);
  assert.ok((compiled.errors?.length ?? 0) >= 4, JSON.stringify(compiled.errors));
  assert.deepEqual(loaded.errors, compiled.errors);
  assert.deepEqual(b, a, 'the same defaults filled in');
});

test('a later call runs the kept file, not a fresh compile; another schema gets a file of its own', () => {
  const other = { type: 'object', properties: { n: { type: 'integer', default: 3 } } };
  const own = mkdtempSync(join(tmpdir(), 'sluice-schema-code-'));
  try {
    const compiled = schemaValidator(other, own);
    const [file] = readdirSync(own);
    // What the next call returns is whatever that file holds: here, one that refuses everything.
    writeFileSync(join(own, file!), 'module.exports = function refuse() { return false; };');
    assert.equal(schemaValidator(other, own)({ n: 1 }), false, 'the file on disk ran');
    assert.equal(compiled({ n: 1 }), true, 'the compiled one accepts the same document');
    schemaValidator({ ...other, required: ['n'] }, own);
    assert.equal(readdirSync(own).length, 2, 'a changed schema is another file');
  } finally {
    rmSync(own, { recursive: true, force: true });
  }
});

test('where the code cannot be written, the validator is compiled and works', () => {
  const file = join(dir, 'a-file');
  writeFileSync(file, '');
  const v = schemaValidator({ type: 'object', required: ['x'] }, join(file, 'below'));
  assert.equal(v({}), false);
  assert.equal(v({ x: 1 }), true);
});
