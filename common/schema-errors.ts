import type { ErrorObject } from 'ajv';

// ajv's errors, as a person would write them: "groups[1].plan.rate: must be >= 0, got -1".
// One line per problem, naming the field in the document's own terms (dots and [index],
// not JSON pointers), saying what was expected and what was found. The errors must come
// from an ajv compiled with `verbose` (the failing value and schema are needed) and
// `allErrors` (every problem at once).
//
// A schema can word its own message: `errorMessage` replaces the message of any keyword
// failing in that schema, `patternErrorMessage` only a failed `pattern` (the names VS Code
// and yaml-language-server show in the editor for the same schema).

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

/** The message for one error, or undefined for errors that only summarise others (`if`). */
function message(e: ErrorObject): string | undefined {
  const schema = (e.parentSchema ?? {}) as Json;
  const p = e.params as Json;
  if (e.keyword === 'if') return undefined;
  if (e.keyword === 'pattern' && typeof schema.patternErrorMessage === 'string') return `${schema.patternErrorMessage}${got(e.data)}`;
  if (typeof schema.errorMessage === 'string') return schema.errorMessage;
  switch (e.keyword) {
    case 'type': return typeMessage(p.type as string | string[], e.data);
    case 'minimum': return `must be >= ${p.limit as number}${got(e.data)}`;
    case 'maximum': return `must be <= ${p.limit as number}${got(e.data)}`;
    case 'exclusiveMinimum': return `must be > ${p.limit as number}${got(e.data)}`;
    case 'exclusiveMaximum': return `must be < ${p.limit as number}${got(e.data)}`;
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

/** Where the error is, and what it says; `required`, `additionalProperties` and a bad tag name the child field. */
function line(e: ErrorObject, root: unknown): string | undefined {
  const at = fieldPath(e.instancePath, root);
  const child = (key: string): string => (at === '' ? key : `${at}.${key}`);
  const p = e.params as Json;
  switch (e.keyword) {
    case 'required':
      return `${child(p.missingProperty as string)}: is required`;
    case 'additionalProperties': {
      const known = Object.keys(((e.parentSchema as Json | undefined)?.properties ?? {}) as Json);
      return `${child(p.additionalProperty as string)}: unknown field (expected one of: ${known.join(', ')})`;
    }
    case 'discriminator': {
      // params: { error: 'tag' (missing or not a string) | 'mapping' (no member has it), tag, tagValue }
      const tag = p.tag as string;
      if (p.tagValue === undefined) return `${child(tag)}: is required`;
      const members = ((e.parentSchema as Json | undefined)?.oneOf ?? []) as Json[];
      const values = members.map((m) => ((m.properties as Json)[tag] as Json).const);
      return `${child(tag)}: must be one of ${values.join(', ')}${got(p.tagValue)}`;
    }
    default: {
      const m = message(e);
      return m === undefined ? undefined : `${at === '' ? '(top level)' : at}: ${m}`;
    }
  }
}

/** Every problem ajv found in `root`, one readable line each, without repeats. */
export function readableErrors(errors: readonly ErrorObject[], root: unknown): string[] {
  const lines = errors.map((e) => line(e, root)).filter((l): l is string => l !== undefined);
  return [...new Set(lines)];
}
