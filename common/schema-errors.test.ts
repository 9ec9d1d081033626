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

// The image options' shapes: a union given as a name or an object, messages worded by the
// schema, and the document named by the boundary that checks it.
const Options = Type.Object({
  name: Type.String({ pattern: '^[a-z]+$', errorMessage: 'must be lower-case letters' }),
  size: Type.Optional(Type.Integer({ minimum: 1, maximum: 9, default: 3 })),
  target: Type.Optional(Type.Union([
    Type.String({ minLength: 1, format: 'uri' }),
    Type.Object({ url: Type.String(), weight: Type.Optional(Type.Number({ minimum: 0 })) }, { additionalProperties: false }),
  ], { errorMessage: 'must be a name or {url, weight}', 'x-component': 'Target' })),
  plain: Type.Optional(Type.Union([Type.Number(), Type.Literal(false)])),
}, { additionalProperties: false, errorMessage: 'must be a JSON object' });
const checkOptions = schemaChecker(Options, { root: 'options' });

test('problems come as {field, message} too, and a problem with the whole document names it as the boundary says', () => {
  const { value, problems, errors } = checkOptions({ name: 'abc' });
  assert.deepEqual({ value, problems, errors }, { value: { name: 'abc', size: 3 }, problems: [], errors: [] });
  assert.deepEqual(checkOptions({ size: 0, extra: true }).problems, [
    { field: 'name', message: 'is required' },
    { field: 'extra', message: 'unknown field (expected one of: name, size, target, plain)' },
    { field: 'size', message: 'must be >= 1, got 0' },
  ]);
  assert.deepEqual(checkOptions({ name: 'ABC' }).errors, ['name: must be lower-case letters'], 'errorMessage does not echo the value');
  assert.deepEqual(checkOptions([]).problems, [{ field: 'options', message: 'must be a JSON object' }]);
});

test('a union reports the branch of the value\'s JSON type; a type no branch takes reads as the union\'s message', () => {
  assert.deepEqual(checkOptions({ name: 'a', target: { url: 'x', weight: -1, more: 1 } }).errors, [
    'target.more: unknown field (expected one of: url, weight)',
    'target.weight: must be >= 0, got -1',
  ]);
  assert.deepEqual(checkOptions({ name: 'a', target: '' }).errors, ['target: must be a name or {url, weight}'], 'the branch fails at the union\'s place');
  assert.deepEqual(checkOptions({ name: 'a', target: 7 }).errors, ['target: must be a name or {url, weight}']);
  assert.deepEqual(checkOptions({ name: 'a', plain: 'x' }).errors, ['plain: must be a number or true or false, got "x"'], 'without errorMessage: the branches\' types');
  assert.deepEqual(checkOptions({ name: 'a', plain: true }).errors, ['plain: must be false, got true']);
});
