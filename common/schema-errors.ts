import type { ErrorObject } from 'ajv';

// ajv's errors, as a person would write them: "groups[1].plan.rate: must be >= 0, got -1".
// One problem per mistake, naming the field in the document's own terms (dots and [index],
// not JSON pointers), saying what was expected and what was found. The errors must come
// from an ajv compiled with `verbose` (the failing value and schema are needed) and
// `allErrors` (every problem at once). This is the one wording of every boundary: config
// files, scenario files, request bodies, image options and flags.
//
// A schema can word its own message: `errorMessage` replaces the message of any keyword
// failing in that schema (and does not echo the value: use it where the value is a secret),
// `patternErrorMessage` only a failed `pattern` (the names VS Code and yaml-language-server
// show in the editor for the same schema).
//
// A union (`anyOf`, as TypeBox writes `Type.Union`) reports every branch's failures; only
// the branch for the value's JSON type says anything (an object given for `crop` failed the
// object form, not the string one), so the others are left out. A failure of that branch at
// the union's own place reads as the union's `errorMessage` when it has one.

type Json = Record<string, unknown>;

/** A JSON pointer ("/groups/1/plan") as a field path ("groups[1].plan"), indices where `root` has a list. */
export function fieldPath(pointer: string, root: unknown): string {
  if (pointer === '') return '';
  let path = '';
  let node: unknown = root;
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    path = Array.isArray(node) ? `${path}[${key}]` : path === '' ? key : `${path}.${key}`;
    node = typeof node === 'object' && node !== null ? (node as Json)[key] : undefined;
  }
  return path;
}

const TYPE_NAMES: Readonly<Record<string, string>> = {
  number: 'a number', integer: 'a whole number', string: 'a string', boolean: 'true or false',
  object: 'a mapping', array: 'a list', null: 'empty',
};

const got = (v: unknown): string => `, got ${JSON.stringify(v)}`;

function typeMessage(type: string | readonly string[], data: unknown): string {
  const names = (Array.isArray(type) ? type : [type]).map((t) => TYPE_NAMES[t] ?? t);
  return `must be ${names.join(' or ')}${got(data)}`;
}

/** One thing wrong with a document: where (`groups[1].plan.rate`, or the document's name) and what it must be instead. */
export interface Problem {
  readonly field: string;
  readonly message: string;
}

/** `field: message`, the form every refusal is written in. */
export function problemLine(p: Problem): string {
  return `${p.field}: ${p.message}`;
}

/** What the whole document is called in a problem with it, unless the boundary names it (`options`, `body`). */
export const TOP_LEVEL = '(top level)';

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function typesOf(s: Json): string[] {
  return Array.isArray(s.type) ? s.type as string[] : typeof s.type === 'string' ? [s.type] : [];
}

/** The message for one error, or undefined for errors that only summarise others (`if`). `union`: the message of the union it failed in. */
function message(e: ErrorObject, union: string | undefined): string | undefined {
  const schema = (e.parentSchema ?? {}) as Json;
  const p = e.params as Json;
  if (e.keyword === 'if') return undefined;
  if (e.keyword === 'pattern' && typeof schema.patternErrorMessage === 'string') return `${schema.patternErrorMessage}${got(e.data)}`;
  if (typeof schema.errorMessage === 'string') return schema.errorMessage;
  if (union !== undefined) return union;
  switch (e.keyword) {
    case 'type': return typeMessage(p.type as string | string[], e.data);
    case 'anyOf': return typeMessage([...new Set((e.schema as Json[]).flatMap(typesOf))], e.data);
    case 'minimum': return `must be >= ${p.limit as number}${got(e.data)}`;
    case 'maximum': return `must be <= ${p.limit as number}${got(e.data)}`;
    case 'exclusiveMinimum': return `must be > ${p.limit as number}${got(e.data)}`;
    case 'exclusiveMaximum': return `must be < ${p.limit as number}${got(e.data)}`;
    case 'multipleOf': return `must be a multiple of ${p.multipleOf as number}${got(e.data)}`;
    case 'enum': return `must be one of ${(p.allowedValues as unknown[]).join(', ')}${got(e.data)}`;
    case 'const': return `must be ${JSON.stringify(p.allowedValue)}${got(e.data)}`;
    case 'minLength': return p.limit === 1 ? 'must not be empty' : `must be at least ${p.limit as number} characters${got(e.data)}`;
    case 'maxLength': return `must be at most ${p.limit as number} characters`;
    case 'minItems': return p.limit === 1 ? 'must list at least one item' : `must list at least ${p.limit as number} items`;
    case 'maxItems': return `must list at most ${p.limit as number} items`;
    case 'pattern': return `must match ${p.pattern as string}${got(e.data)}`;
    case 'not': return 'is not allowed here';
    default: return e.message ?? e.keyword;
  }
}

/**
 * The errors worth a problem, each with the `errorMessage` of the union its failure
 * stands for: of every union, only the branch for the value's JSON type (and the union's
 * own error when no branch takes that type).
 */
function relevant(errors: readonly ErrorObject[]): (readonly [ErrorObject, string | undefined])[] {
  const dropped = new Set<ErrorObject>();
  const union = new Map<ErrorObject, string>();
  for (const u of errors) {
    if (u.keyword !== 'anyOf' || dropped.has(u)) continue;
    const type = jsonType(u.data);
    const chosen = (u.schema as Json[]).findIndex((b) => typesOf(b).includes(type) || (type === 'integer' && typesOf(b).includes('number')));
    // No branch takes the value's type: the union's own error says what it must be.
    if (chosen !== -1) dropped.add(u);
    const own = (u.parentSchema as Json).errorMessage;
    for (const e of errors) {
      if (!e.schemaPath.startsWith(`${u.schemaPath}/`)) continue;
      const branch = Number(e.schemaPath.slice(u.schemaPath.length + 1).split('/')[0]);
      if (branch !== chosen) dropped.add(e);
      else if (e.instancePath === u.instancePath && typeof own === 'string') union.set(e, own);
    }
  }
  return errors.filter((e) => !dropped.has(e)).map((e) => [e, union.get(e)] as const);
}

/** Where the error is, and what it says; `required`, `additionalProperties` and a bad tag name the child field. */
function problem(e: ErrorObject, root: unknown, name: string, union: string | undefined): Problem | undefined {
  const at = fieldPath(e.instancePath, root);
  const child = (key: string): string => (at === '' ? key : `${at}.${key}`);
  const p = e.params as Json;
  switch (e.keyword) {
    case 'required':
      return { field: child(p.missingProperty as string), message: 'is required' };
    case 'additionalProperties': {
      const known = Object.keys(((e.parentSchema as Json | undefined)?.properties ?? {}) as Json);
      return { field: child(p.additionalProperty as string), message: `unknown field (expected one of: ${known.join(', ')})` };
    }
    case 'discriminator': {
      // params: { error: 'tag' (missing or not a string) | 'mapping' (no member has it), tag, tagValue }
      const tag = p.tag as string;
      if (p.tagValue === undefined) return { field: child(tag), message: 'is required' };
      const members = ((e.parentSchema as Json | undefined)?.oneOf ?? []) as Json[];
      const values = members.map((m) => ((m.properties as Json)[tag] as Json).const);
      return { field: child(tag), message: `must be one of ${values.join(', ')}${got(p.tagValue)}` };
    }
    default: {
      const m = message(e, union);
      return m === undefined ? undefined : { field: at === '' ? name : at, message: m };
    }
  }
}

/** Every problem ajv found in `root`, without repeats; a problem with the whole document names it `name`. */
export function schemaProblems(errors: readonly ErrorObject[], root: unknown, name: string = TOP_LEVEL): Problem[] {
  const seen = new Set<string>();
  const out: Problem[] = [];
  for (const [e, union] of relevant(errors)) {
    const p = problem(e, root, name, union);
    if (p === undefined || seen.has(problemLine(p))) continue;
    seen.add(problemLine(p));
    out.push(p);
  }
  return out;
}

/** Every problem ajv found in `root`, one readable line each, without repeats. */
export function readableErrors(errors: readonly ErrorObject[], root: unknown): string[] {
  return schemaProblems(errors, root).map(problemLine);
}
