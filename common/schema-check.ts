import type { ErrorObject, ValidateFunction } from 'ajv';
import type { Static, TSchema } from '@sinclair/typebox';
import { schemaValidator } from './schema-code.js';
import { problemLine, schemaProblems, TOP_LEVEL, type Problem } from './schema-errors.js';

// One TypeBox definition gives the type the program reads, the JSON Schema a file is
// written against, and the validator. The type is the value after defaults: a property
// with a `default` is declared required (the program can rely on it) and is optional in
// the published schema and the validator (the file may leave it out, ajv fills it in).

type Json = Record<string, unknown>;

function withOptionalDefaults(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withOptionalDefaults);
  if (typeof node !== 'object' || node === null) return node;
  const out: Json = Object.fromEntries(Object.entries(node).map(([k, v]) => [k, withOptionalDefaults(v)]));
  const props = out.properties as Json | undefined;
  if (Array.isArray(out.required) && props !== undefined) {
    out.required = out.required.filter((k: string) => (props[k] as Json | undefined)?.default === undefined);
    if ((out.required as unknown[]).length === 0) delete out.required;
  }
  return out;
}

/** The JSON Schema a document is written against (and validated with). */
export function documentSchema(schema: TSchema): Json {
  return withOptionalDefaults(JSON.parse(JSON.stringify(schema))) as Json;
}

/**
 * Keywords ajv takes as annotations: the message keywords (schema-errors.ts) and
 * `x-component`, the name an OpenAPI document gives a subschema (common/openapi.ts, which
 * leaves all of them out of the published document).
 */
export const ANNOTATIONS = ['errorMessage', 'patternErrorMessage', 'x-component'] as const;

// Errors after which nothing under the value can be read as the schema says.
const SHAPE = new Set(['type', 'discriminator', 'oneOf', 'anyOf']);

export interface Checked<T> {
  /** The document with defaults filled in; trust only the parts where `clean` holds. */
  readonly value: T;
  /** Every problem, each naming its field. */
  readonly problems: readonly Problem[];
  /** The problems as `field: message` lines. */
  readonly errors: readonly string[];
  /**
   * The part at this JSON pointer ("" is the whole document) is sound: no schema error at
   * or under it, and every part above it has the right shape (a mapping is a mapping).
   */
  clean(pointer: string): boolean;
}

export interface CheckerOptions {
  /** What a problem with the whole document calls it (`options`, `body`); `(top level)` if not given. */
  readonly root?: string;
}

/** Checks documents against `schema`. The document is changed in place (defaults), so pass one you own. */
export function schemaChecker<T extends TSchema>(schema: T, options: CheckerOptions = {}): (doc: unknown) => Checked<Static<T>> {
  // Made on first use: a process that never checks this kind of document (a CLI command,
  // a gateway without admin traffic) does not load or generate its validator.
  let validate: ValidateFunction | undefined;
  return (doc) => {
    validate ??= schemaValidator(documentSchema(schema));
    const raw: readonly ErrorObject[] = validate(doc) ? [] : validate.errors ?? [];
    // A missing property is a problem at the property, not at the mapping that lacks it.
    const at = raw.map((e) => (e.keyword === 'required' ? `${e.instancePath}/${(e.params as { missingProperty: string }).missingProperty}` : e.instancePath));
    const problems = schemaProblems(raw, doc, options.root ?? TOP_LEVEL);
    return {
      value: doc as Static<T>,
      problems,
      errors: problems.map(problemLine),
      clean: (pointer) => !raw.some((e, i) => at[i] === pointer || at[i]!.startsWith(`${pointer}/`)
        || (SHAPE.has(e.keyword) && pointer.startsWith(`${e.instancePath}/`))),
    };
  };
}
