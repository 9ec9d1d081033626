import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Type } from '@sinclair/typebox';
import { documentSchema, schemaChecker } from './schema-check.js';

// One definition: a property with a default is always there for the program, and optional
// in the file and the published schema; `clean` tells which parts a semantic pass can trust.

const Schema = Type.Object({
  name: Type.String(),
  seed: Type.Integer({ default: 1 }),
  limits: Type.Object({ rate: Type.Number({ default: 0 }), burst: Type.Number({ minimum: 1 }) }, { default: {} }),
  list: Type.Array(Type.Object({ a: Type.Number(), b: Type.Number() }), { default: [] }),
});
const check = schemaChecker(Schema);

test('defaults are optional in the published schema and filled in by the checker', () => {
  const published = documentSchema(Schema) as { required: string[]; properties: { limits: { required: string[] } } };
  assert.deepEqual(published.required, ['name']);
  assert.deepEqual(published.properties.limits.required, ['burst']);
  const { value, errors } = check({ name: 'x', limits: { burst: 2 } });
  assert.deepEqual(errors, []);
  assert.deepEqual(value, { name: 'x', seed: 1, limits: { rate: 0, burst: 2 }, list: [] });
});

test('clean: no error at or under a part, no missing part, and every part above it the right shape', () => {
  const { clean } = check({ name: 'x', limits: { burst: 0 }, list: [{ a: 1, b: 2 }, { a: 'no', b: 2 }, 7, { b: 1 }] });
  assert.equal(clean(''), false);
  assert.equal(clean('/name'), true);
  assert.equal(clean('/limits'), false, 'burst is below its minimum');
  assert.equal(clean('/limits/rate'), true, 'a sibling of the bad part');
  assert.equal(clean('/list/0'), true);
  assert.equal(clean('/list/1'), false);
  assert.equal(clean('/list/1/b'), true);
  assert.equal(clean('/list/2/a'), false, '7 is not a mapping, so it has no sound a');
  assert.equal(clean('/list/3/a'), false, 'a is missing');
  assert.equal(clean('/list/3/b'), true);
});
