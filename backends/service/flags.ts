import { Type, type SchemaOptions, type Static, type TObject, type TSchema } from '@sinclair/typebox';
import { parseArgs } from 'node:util';
import { readConfigText } from '../../common/config-text.js';
import { parseStoreSection, storeConfigOf, type StoreConfig } from '../../common/store-config.js';
import { ConfigError } from '../../common/errors.js';
import { schemaChecker } from '../../common/schema-check.js';

/**
 * The command-line style of every Sluice backend-side command (sluice-backend,
 * sluice-webhooks): each setting a flag (`--name value` or `--name=value`) and an
 * environment variable (`<PREFIX>NAME`), the flag winning; errors name both. The flags
 * are a TypeBox object (one property per flag, its description the --help line); argv
 * is split by util.parseArgs, values are converted from text and then checked against
 * the schema, which also fills in the defaults.
 */

/** A whole-number flag from `minimum` to `maximum`. */
export function IntFlag(minimum: number, maximum: number, description: string, o: SchemaOptions = {}) {
  return Type.Integer({ minimum, maximum, description, ...o });
}
export function BoolFlag(dflt: boolean, description: string) {
  return Type.Boolean({ default: dflt, description });
}
export function StringFlag(description: string, o: SchemaOptions = {}) {
  return Type.String({ description, ...o });
}
/** Comma-separated values; empty when not given. */
export function ListFlag(description: string) {
  return Type.Array(Type.String(), { default: [], description });
}

export interface FlagValues<T> {
  readonly values: T;
  /** `--flag (ENV)`, for error messages. */
  where(flag: string): string;
  /** Records a problem with a flag; finish() throws them all. */
  need(flag: string, why: string): void;
  /** Records a problem with something else (an environment variable that is not a flag). */
  problem(message: string): void;
  /** Throws a ConfigError listing every problem recorded, if there is one. */
  finish(): void;
}

export function envNameOf(prefix: string, flag: string): string {
  return `${prefix}${flag.toUpperCase().replace(/-/g, '_')}`;
}

const TRUE = ['1', 'true', 'yes', 'on'];
const FALSE = ['0', 'false', 'no', 'off'];

/**
 * The value of `text` for a flag of schema `s`, or a problem. Text that is no number is
 * left as text for an integer flag: the schema then says what it must be, as for a number
 * out of range.
 */
function fromText(s: TSchema, text: string): { readonly value: unknown } | { readonly problem: string } {
  switch (s.type) {
    case 'integer': return { value: /^\s*-?\d+(\.\d+)?\s*$/.test(text) ? Number(text) : text };
    case 'boolean': {
      const v = text.trim().toLowerCase();
      return TRUE.includes(v) ? { value: true } : FALSE.includes(v) ? { value: false } : { problem: 'must be true or false' };
    }
    case 'array': return { value: text.split(',').map((x) => x.trim()).filter((x) => x.length > 0) };
    default: return text.length === 0 ? { problem: 'must not be empty' } : { value: text };
  }
}

/** parseArgs' refusals ("Unknown option '--x'. To specify a positional argument...") as the flag's own words. */
function argvProblem(err: unknown): string {
  const e = err as { code?: string; message: string };
  const quoted = /'([^']+)'/.exec(e.message)?.[1] ?? '';
  const flag = quoted.split(' ')[0];
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': return `unknown flag ${flag} (see --help)`;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL': return `unexpected argument ${JSON.stringify(quoted)} (flags look like --port 7001)`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return /argument missing|ambiguous/.test(e.message) ? `${flag}: missing value` : `${flag}: takes no value`;
  }
  throw err;
}

const checkers = new WeakMap<TObject, ReturnType<typeof schemaChecker>>();

/** Parses argv (without node and the script) and env against the flag schema. */
export function parseFlags<T extends TObject>(schema: T, envPrefix: string, argv: readonly string[], env: NodeJS.ProcessEnv): FlagValues<Static<T>> {
  const props = schema.properties as Record<string, TSchema>;
  const where = (flag: string): string => `--${flag} (${envNameOf(envPrefix, flag)})`;
  const raw: Record<string, unknown> = {};
  const from = new Map<string, string>();
  const problems: string[] = [];
  const set = (flag: string, text: string, source: string): void => {
    const v = fromText(props[flag]!, text);
    from.set(flag, source);
    if ('value' in v) raw[flag] = v.value;
    else problems.push(`${where(flag)}: ${v.problem}, got ${JSON.stringify(text)} from ${source}`);
  };
  for (const flag of Object.keys(props)) {
    const e = env[envNameOf(envPrefix, flag)];
    if (e !== undefined && e !== '') set(flag, e, `env ${envNameOf(envPrefix, flag)}`);
  }
  // `--bool=false`: parseArgs takes booleans only bare or as --no-bool.
  const args: string[] = [];
  for (const arg of argv) {
    const m = /^--([^=]+)=(.*)$/s.exec(arg);
    if (m === null || props[m[1]!]?.type !== 'boolean') { args.push(arg); continue; }
    const v = fromText(props[m[1]!]!, m[2]!);
    if ('value' in v) args.push(v.value === true ? `--${m[1]}` : `--no-${m[1]}`);
    else problems.push(`--${m[1]}: ${v.problem}, got ${JSON.stringify(m[2])}`);
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args,
      options: Object.fromEntries(Object.entries(props).map(([flag, s]) => [flag, { type: s.type === 'boolean' ? 'boolean' as const : 'string' as const }])),
      strict: true,
      allowPositionals: false,
      allowNegative: true,
    });
  } catch (err) {
    throw new ConfigError([...problems, argvProblem(err)]);
  }
  for (const [flag, v] of Object.entries(parsed.values)) {
    if (typeof v === 'boolean') { raw[flag] = v; from.set(flag, v ? `--${flag}` : `--no-${flag}`); } else if (typeof v === 'string') set(flag, v, `--${flag}`);
  }
  let check = checkers.get(schema);
  if (check === undefined) checkers.set(schema, check = schemaChecker(schema));
  for (const p of check(raw).problems) problems.push(`${where(p.field)}: ${p.message} (from ${from.get(p.field) ?? 'the default'})`);
  if (problems.length > 0) {
    // In --help order, however they were found (conversion, then the schema).
    const rank = (text: string): number => Object.keys(props).indexOf(/^--([^ :]+)/.exec(text)?.[1] ?? '');
    throw new ConfigError(problems.sort((a, b) => rank(a) - rank(b)));
  }
  return {
    values: raw as Static<T>,
    where,
    need: (flag, why) => { problems.push(`${where(flag)}: ${why}`); },
    problem: (message) => { problems.push(message); },
    finish: () => { if (problems.length > 0) throw new ConfigError(problems); },
  };
}

export interface FlagHelp {
  /** `--name <kind>`, or `--name` for a boolean. */
  readonly synopsis: string;
  readonly env: string;
  /** The description, then the schema's default. */
  readonly text: string;
}

/** Each flag as --help and backends/README.md's tables show it. */
export function flagHelp(schema: TObject, envPrefix: string): FlagHelp[] {
  const kind = (s: TSchema): string => (s.type === 'integer' ? ' <int>' : s.type === 'array' ? ' <list>' : s.type === 'boolean' ? '' : ' <string>');
  return Object.entries(schema.properties as Record<string, TSchema>).map(([flag, s]) => ({
    synopsis: `--${flag}${kind(s)}`,
    env: envNameOf(envPrefix, flag),
    text: `${s.description ?? ''}${s.default === undefined || Array.isArray(s.default) ? '' : ` Default ${String(s.default)}.`}`,
  }));
}

export function usageOf(synopsis: string, schema: TObject, envPrefix: string): string {
  const lines = flagHelp(schema, envPrefix).map((h) => `  ${h.synopsis}\n      ${h.text} [env ${h.env}]`);
  return `usage: ${synopsis}\n\n${lines.join('\n')}\n`;
}

/**
 * A Redis to use: a standalone one by url (`urlFlag`), or the `store` section of a
 * gateway config file (`fileFlag`), which also covers Sentinel, Cluster, password, TLS
 * and prefix exactly as the gateways read them. Undefined when neither is given, or
 * when what was given is wrong (then recorded with need()).
 */
export function storeFromFlags(v: FlagValues<Readonly<Record<string, unknown>>>, urlFlag: string, fileFlag: string, prefixFlag: string | undefined): StoreConfig | undefined {
  const str = (flag: string | undefined): string | undefined => (flag === undefined ? undefined : v.values[flag] as string | undefined);
  const redisUrl = str(urlFlag);
  const file = str(fileFlag);
  const prefix = str(prefixFlag);
  if (redisUrl !== undefined && file !== undefined) { v.need(fileFlag, `give --${urlFlag} or --${fileFlag}, not both`); return undefined; }
  if (file !== undefined) {
    if (prefix !== undefined) v.need(prefixFlag!, `comes from store.prefix in the --${fileFlag} file`);
    try {
      return parseStoreSection(readConfigText(file));
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      v.need(fileFlag, `${file}: ${err.errors.join('; ')}`);
      return undefined;
    }
  }
  if (redisUrl === undefined) return undefined;
  if (!/^rediss?:\/\//.test(redisUrl)) { v.need(urlFlag, `must start with redis:// or rediss://, got ${JSON.stringify(redisUrl)}`); return undefined; }
  return storeConfigOf({ kind: 'redis', url: redisUrl, prefix: prefix ?? 'sluice:' });
}
