import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Type } from '@sinclair/typebox';
import { schemaChecker } from './schema-check.js';
import { fieldPath } from './schema-errors.js';
import { StringEnum, TaggedUnion } from './schema-types.js';

// ajv's errors as readable lines: each names its field in the document's terms and says
// what was expected and what was found; every problem at once, none twice.

const Schema = Type.Object({
  port: Type.Integer({ minimum: 1, maximum: 65_535 }),
  ratio: Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1 }),
  name: Type.String({ minLength: 1 }),
  id: Type.String({ pattern: '^[a-z]+$' }),
  url: Type.String({ pattern: '^https?://', patternErrorMessage: 'must be an http:// URL' }),
  mode: StringEnum(['fast', 'safe']),
  tags: Type.Array(Type.String(), { minItems: 1 }),
  flags: Type.Record(Type.String(), Type.Boolean()),
  store: TaggedUnion('kind', [
    Type.Object({ kind: Type.Literal('memory') }, { additionalProperties: false }),
    Type.Object({ kind: Type.Literal('redis'), url: Type.String() }, { additionalProperties: false }),
  ]),
  either: Type.Object({ a: Type.Optional(Type.String()), b: Type.Optional(Type.String()) },
    { if: { required: ['a'] }, then: { not: { required: ['b'] }, errorMessage: 'give a or b, not both' } }),
}, { additionalProperties: false });
const check = schemaChecker(Schema);
const GOOD = { port: 80, ratio: 0.5, name: 'n', id: 'x', url: 'http://h', mode: 'fast', tags: ['t'], flags: {}, store: { kind: 'memory' }, either: { a: 'x' } };

test('each keyword reads as a person would write it, naming the field', () => {
  assert.deepEqual(check({ ...GOOD }).errors, []);
  const { errors } = check({
    port: 1.5, ratio: 1, name: '', id: 'X', url: 'ftp://h', mode: 'slow', tags: [], flags: { on: 'yes' },
    store: { kind: 'redis' }, either: { a: 'x', b: 'y' }, colour: 'blue',
  });
  assert.deepEqual(errors, [
    'colour: unknown field (expected one of: port, ratio, name, id, url, mode, tags, flags, store, either)',
    'port: must be a whole number, got 1.5',
    'ratio: must be < 1, got 1',
    'name: must not be empty',
    'id: must match ^[a-z]+$, got "X"',
    'url: must be an http:// URL, got "ftp://h"',
    'mode: must be one of fast, safe, got "slow"',
    'tags: must list at least one item',
    'flags.on: must be true or false, got "yes"',
    'store.url: is required',
    'either: give a or b, not both',
  ]);
});

test('a tagged union checks only the member its tag names, or says which tags there are', () => {
  assert.deepEqual(check({ ...GOOD, store: { kind: 'disk', url: 'x' } }).errors, ['store.kind: must be one of memory, redis, got "disk"']);
  assert.deepEqual(check({ ...GOOD, store: {} }).errors, ['store.kind: is required'], 'said once, though ajv says it twice');
  assert.deepEqual(check({ ...GOOD, store: { kind: 'memory', url: 'x' } }).errors, ['store.url: unknown field (expected one of: kind)']);
});

test('the wrong type says what was found; a missing property is named at its own path', () => {
  assert.deepEqual(check({ ...GOOD, port: '80', tags: 'a', flags: [] }).errors,
    ['port: must be a whole number, got "80"', 'tags: must be a list, got "a"', 'flags: must be a mapping, got []']);
  const { errors } = check({ ...GOOD, port: undefined, name: undefined });
  assert.deepEqual(errors, ['port: is required', 'name: is required']);
  assert.deepEqual(check('hello').errors, ['(top level): must be a mapping, got "hello"']);
});

test('field paths use [index] for lists and dots for mappings, and unescape JSON pointers', () => {
  const doc = { groups: [{ plan: { rate: 1 } }], headers: { 'a/b': 1, '0': 2 } };
  assert.equal(fieldPath('/groups/0/plan/rate', doc), 'groups[0].plan.rate');
  assert.equal(fieldPath('/headers/a~1b', doc), 'headers.a/b');
  assert.equal(fieldPath('/headers/0', doc), 'headers.0', 'a mapping key that looks like an index');
  assert.equal(fieldPath('', doc), '');
});
