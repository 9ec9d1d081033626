import type { Static, TSchema } from '@sinclair/typebox';
import { Ajv, type ErrorObject } from 'ajv';

// One validator per boundary, compiled once from the TypeBox definition that also gives
// the static type and the published JSON Schema. ajv's own messages ("must be <= 100",
// "must match exactly one schema in oneOf") name neither the field nor what would be
// right; problemsOf() turns them into "field: what it must be", every problem at once.

/** One thing wrong with an input: where (dotted path, e.g. `resize.width`) and what it must be instead. */
export interface Problem {
  readonly field: string;
  readonly message: string;
}

/**
 * Schema annotations ajv must accept (strict mode refuses unknown keywords) and the
 * published documents leave out:
 * - `x-error`: the message for a wrong value, where the constraints alone would read badly;
 * - `x-component`: the name the OpenAPI document gives the subschema (a `$ref` there).
 */
export const ANNOTATIONS = ['x-error', 'x-component'] as const;

export interface CheckerOptions {
  /** The name of the whole document in messages (`options`, `flags`): a problem at its root names it. */
  readonly root: string;
  /** The message for a property the schema does not know (`unknown option`, `unknown flag`). */
  readonly unknown: string;
}

export type Checker<T extends TSchema> = (value: unknown) => { readonly value: Static<T>; readonly problems: readonly Problem[] };

const ajv = new Ajv({ allErrors: true, verbose: true, useDefaults: true, strict: true, allowUnionTypes: true });
for (const keyword of ANNOTATIONS) ajv.addKeyword({ keyword, schemaType: 'string' });
// Formats are documentation here: what a URL must be (http(s), no credentials) is the
// semantic pass's job, with a message to match.
ajv.addFormat('uri', true);

/**
 * Compiles `schema` once. The checker fills in the schema's defaults (in place: hand it
 * a value of your own) and answers every problem found, none when the value fits.
 */
export function compileChecker<T extends TSchema>(schema: T, o: CheckerOptions): Checker<T> {
  const validate = ajv.compile(schema);
  return (value) => {
    if (validate(value)) return { value: value as Static<T>, problems: [] };
    return { value: value as Static<T>, problems: problemsOf(validate.errors ?? [], o) };
  };
}

type Schema = Readonly<Record<string, unknown>>;

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

function fieldOf(instancePath: string): string {
  return instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~')).join('.');
}

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function branchAccepts(branch: Schema, type: string): boolean {
  const t = branch.type;
  const types = Array.isArray(t) ? t as string[] : typeof t === 'string' ? [t] : [];
  return types.includes(type) || (type === 'integer' && types.includes('number'));
}

function range(s: Schema): string {
  const min = s.minimum ?? s.exclusiveMinimum;
  const max = s.maximum ?? s.exclusiveMaximum;
  if (min !== undefined && max !== undefined) return ` from ${String(min)} to ${String(max)}`;
  if (min !== undefined) return ` of at least ${String(min)}`;
  if (max !== undefined) return ` of at most ${String(max)}`;
  return '';
}

/** What a value must be, read off the schema that refused it. */
export function describe(s: Schema): string {
  if (typeof s['x-error'] === 'string') return s['x-error'];
  if (Array.isArray(s.enum)) return `must be one of ${(s.enum as unknown[]).map(String).join(', ')}`;
  if (s.const !== undefined) return `must be ${JSON.stringify(s.const)}`;
  switch (s.type) {
    case 'integer': return `must be an integer${range(s)}`;
    case 'number': return `must be a number${range(s)}`;
    case 'boolean': return 'must be true or false';
    case 'object': return 'must be an object';
    case 'array': return 'must be a list';
    case 'string':
      if (s.minLength !== undefined || s.maxLength !== undefined) return `must be a string of ${String(s.minLength ?? 0)} to ${String(s.maxLength ?? '∞')} characters`;
      return 'must be a string';
  }
  return 'is not valid here';
}

/**
 * ajv's errors as problems. A union (anyOf) reports every branch's failures; only the
 * branch for the value's JSON type is meaningful (an object given for `crop` failed the
 * object form, not the string one), so the others are dropped, and a failure at the
 * union's own level reads as the union's message.
 */
export function problemsOf(errors: readonly ErrorObject[], o: CheckerOptions): Problem[] {
  const dropped = new Set<ErrorObject>();
  const renamed = new Map<ErrorObject, string>();
  for (const u of errors) {
    if (u.keyword !== 'anyOf' || dropped.has(u)) continue;
    const branches = u.schema as Schema[];
    const chosen = branches.findIndex((b) => branchAccepts(b, jsonType(u.data)));
    for (const e of errors) {
      if (e === u || !e.schemaPath.startsWith(`${u.schemaPath}/`)) continue;
      const branch = Number(e.schemaPath.slice(u.schemaPath.length + 1).split('/')[0]);
      if (branch !== chosen) dropped.add(e);
      else if (e.instancePath === u.instancePath) renamed.set(e, describe(u.parentSchema as Schema));
    }
    if (chosen !== -1) dropped.add(u);
  }
  const seen = new Set<string>();
  const out: Problem[] = [];
  for (const e of errors) {
    if (dropped.has(e)) continue;
    const at = fieldOf(e.instancePath);
    let p: Problem;
    if (e.keyword === 'additionalProperties') p = { field: join(at, String(e.params.additionalProperty)), message: o.unknown };
    else if (e.keyword === 'required') p = { field: join(at, String(e.params.missingProperty)), message: 'is required' };
    else p = { field: at === '' ? o.root : at, message: renamed.get(e) ?? describe(e.parentSchema as Schema) };
    const key = `${p.field}\n${p.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(p);
  }
  return out;
}

/** `field: message` lines, the form every refusal is written in. */
export function describeProblems(problems: readonly Problem[]): string[] {
  return problems.map((p) => `${p.field}: ${p.message}`);
}
