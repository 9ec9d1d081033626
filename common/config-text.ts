import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { TSchema } from '@sinclair/typebox';
import { isPair, isScalar, isSeq, parseDocument, Scalar, visit } from 'yaml';
import { ConfigError } from './errors.js';

/** The file's text; a file that cannot be read is a config error like any other. */
export function readConfigText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`${file}: ${(err as Error).message}`]);
  }
}

// `${NAME}` or `${NAME:-default}` (the default also applies when NAME is set but empty).
export const PLACEHOLDER = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;
// What the YAML 1.2 core schema reads as a number; an env value like this in a plain
// scalar of its own (`port: ${PORT}`) becomes a number, as if it had been typed there.
const NUMBER = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/;

interface Placeholder { readonly whole: string; readonly name: string; readonly def: string | undefined }

/**
 * Parses the YAML with `${NAME}` and `${NAME:-default}` expanded in values; `errors`
 * gets one line per placeholder that has neither a value nor a default. YAML that does
 * not parse throws a ConfigError. The expansion happens after parsing, on scalars, so a
 * value is taken verbatim: a `#`, `: `, a quote or a newline in a secret stays part of
 * it instead of being read as YAML (a pepper with " #" in it must not silently become
 * no pepper at all), and placeholders in comments are never looked at. To get there,
 * each placeholder is first swapped for an inert token that is a valid plain scalar
 * anywhere (flow collections included), the text is parsed, and tokens in scalars are
 * replaced. A plain scalar that is one placeholder and nothing else takes the type its
 * value reads as: a number, true/false, or (when empty) nothing, so the field's default
 * applies. That is the only type conversion: `port: "8080"` stays a string.
 */
export function parseYamlWithEnv(text: string, env: NodeJS.ProcessEnv, errors: string[]): unknown {
  const placeholders: Placeholder[] = [];
  const nonce = randomBytes(6).toString('hex');
  const tokenized = text.replace(PLACEHOLDER, (whole, name: string, def: string | undefined) =>
    `__sluice_env_${nonce}_${placeholders.push({ whole, name, def }) - 1}__`);
  const token = new RegExp(`__sluice_env_${nonce}_(\\d+)__`, 'g');
  const untokenize = (s: string): string => s.replace(token, (_, i: string) => placeholders[Number(i)]!.whole);

  const doc = parseDocument(tokenized);
  if (doc.errors.length > 0) throw new ConfigError(doc.errors.map((e) => `yaml: ${untokenize(e.message)}`));
  if (placeholders.length === 0) return doc.toJS();

  visit(doc, {
    Scalar(_key, node, ancestors) {
      if (typeof node.value !== 'string' || !node.value.includes(`__sluice_env_${nonce}_`)) return;
      const raw = node.value;
      const at = fieldPath(ancestors, node);
      const expanded = raw.replace(token, (_, i: string) => {
        const p = placeholders[Number(i)]!;
        const v = env[p.name];
        if (v !== undefined && v !== '') return v;
        if (p.def !== undefined) return p.def;
        errors.push(`${at}: environment variable ${p.name} is not set and ${p.whole} has no default`);
        return '';
      });
      const alone = node.type === Scalar.PLAIN && new RegExp(`^__sluice_env_${nonce}_\\d+__$`).test(raw);
      node.value = alone ? typed(expanded) : expanded;
    },
  });
  return doc.toJS();
}

function typed(v: string): string | number | boolean | null {
  if (v === '') return null;
  if (NUMBER.test(v)) return Number(v);
  if (v === 'true' || v === 'false') return v === 'true';
  return v;
}

/** `server.port`, `routes[0].upstream`: how errors name a field, from the YAML node's ancestors. */
function fieldPath(ancestors: readonly unknown[], node: unknown): string {
  let path = '';
  const chain = [...ancestors, node];
  for (let i = 0; i < chain.length - 1; i++) {
    const a = chain[i];
    const child = chain[i + 1];
    if (isSeq(a)) path += `[${a.items.indexOf(child as never)}]`;
    else if (isPair(a) && a.value === child && isScalar(a.key)) path = path === '' ? String(a.key.value) : `${path}.${String(a.key.value)}`;
  }
  return path === '' ? '(root)' : path;
}

type Obj = Record<string, unknown>;

export function isMapping(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** What a checked value is once the loader has frozen it. */
export type Frozen<T> = T extends readonly (infer U)[] ? readonly Frozen<U>[] : T extends object ? { readonly [K in keyof T]: Frozen<T[K]> } : T;

/**
 * Readies a parsed config for its schema, in place. An empty value (`port:`, or a
 * `${VAR}` that came out empty) means "not given": the field's default applies. And a
 * field marked `shorthand` takes its short form: with `shorthand: 'url'` a string
 * stands for `{url: string}`; with `shorthand: true`, `true` stands for `{}` (every
 * default) and `false` for leaving the field out. The schema checks the long form only,
 * because ajv fills no defaults inside the branches of a union.
 */
export function expandShorthands(schema: TSchema, value: unknown, root: TSchema = schema): unknown {
  const s = definition(schema, root) as { shorthand?: string | true; properties?: Record<string, TSchema>; patternProperties?: Record<string, TSchema>; items?: TSchema };
  let v = value;
  if (s.shorthand === true && typeof v === 'boolean') v = v ? {} : undefined;
  else if (typeof s.shorthand === 'string' && typeof v === 'string') v = { [s.shorthand]: v };
  if (Array.isArray(v) && s.items !== undefined) return v.map((item) => expandShorthands(s.items!, item, root));
  if (!isMapping(v)) return v;
  const each = s.patternProperties === undefined ? undefined : Object.values(s.patternProperties)[0];
  for (const [k, child] of Object.entries(v)) {
    const sub = s.properties?.[k] ?? each;
    const next = child === null || child === '' ? undefined : sub === undefined ? child : expandShorthands(sub, child, root);
    if (next === undefined) delete v[k]; else v[k] = next;
  }
  return v;
}

/** A `{$ref: '#/definitions/name'}` node as the definition it names (recursive shapes such as nested routes). */
function definition(schema: TSchema, root: TSchema): TSchema {
  const ref = (schema as { $ref?: string }).$ref;
  if (ref === undefined || !ref.startsWith('#/definitions/')) return schema;
  return (root as { definitions?: Record<string, TSchema> }).definitions?.[ref.slice('#/definitions/'.length)] ?? schema;
}
