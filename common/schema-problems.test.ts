import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Type } from '@sinclair/typebox';
import { compileChecker } from './schema-problems.js';

const Doc = Type.Object({
  name: Type.String({ pattern: '^[a-z]+$', 'x-error': 'must be lower-case letters' }),
  size: Type.Optional(Type.Integer({ minimum: 1, maximum: 9, default: 3 })),
  target: Type.Optional(Type.Union([
    Type.String({ minLength: 1 }),
    Type.Object({ url: Type.String(), weight: Type.Optional(Type.Number({ minimum: 0 })) }, { additionalProperties: false }),
  ], { 'x-error': 'must be a name or {url, weight}' })),
}, { additionalProperties: false, 'x-error': 'must be an object' });

const check = compileChecker(Doc, { root: 'doc', unknown: 'unknown field' });

test('a value that fits: no problems, the defaults filled in', () => {
  const v = { name: 'abc' };
  assert.deepEqual(check(v), { value: { name: 'abc', size: 3 }, problems: [] });
});

test('every problem at once, each with its field and a message read off the schema', () => {
  assert.deepEqual(check({ size: 0, extra: true }).problems, [
    { field: 'name', message: 'is required' },
    { field: 'extra', message: 'unknown field' },
    { field: 'size', message: 'must be an integer from 1 to 9' },
  ]);
  assert.deepEqual(check({ name: 'ABC' }).problems, [{ field: 'name', message: 'must be lower-case letters' }]);
  assert.deepEqual(check([]).problems, [{ field: 'doc', message: 'must be an object' }]);
});

test('a union reports the branch of the value\'s JSON type; a type no branch takes reads as the union\'s message', () => {
  assert.deepEqual(check({ name: 'a', target: { url: 'x', weight: -1, more: 1 } }).problems, [
    { field: 'target.more', message: 'unknown field' },
    { field: 'target.weight', message: 'must be a number of at least 0' },
  ]);
  assert.deepEqual(check({ name: 'a', target: '' }).problems, [{ field: 'target', message: 'must be a name or {url, weight}' }]);
  assert.deepEqual(check({ name: 'a', target: 7 }).problems, [{ field: 'target', message: 'must be a name or {url, weight}' }]);
});
