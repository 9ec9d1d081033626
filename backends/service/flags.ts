import { ConfigError as GatewayConfigError, parseStoreSection, readConfigText, storeConfigOf } from '../../gateway/config/load.js';
import type { StoreConfig } from '../../gateway/config/types.js';

/**
 * The command-line style of every Sluice backend-side command (sluice-backend,
 * sluice-webhooks): each setting a flag (`--name value` or `--name=value`) and an
 * environment variable (`<PREFIX>NAME`), the flag winning; errors name both.
 */
export class ConfigError extends Error {}

export type Kind = 'int' | 'bool' | 'string' | 'list';
export interface Spec {
  readonly flag: string;
  readonly kind: Kind;
  readonly min?: number;
  readonly max?: number;
  readonly help: string;
}

export interface FlagValues {
  int<D extends number | undefined>(flag: string, dflt: D): number | D;
  bool(flag: string, dflt: boolean): boolean;
  str(flag: string): string | undefined;
  /** Empty when not given. */
  list(flag: string): readonly string[];
  /** `--flag (ENV)`, for error messages. */
  where(flag: string): string;
}

export function envNameOf(prefix: string, flag: string): string {
  return `${prefix}${flag.toUpperCase().replace(/-/g, '_')}`;
}

function parseValue(spec: Spec, where: string, raw: string, source: string): number | boolean | string | string[] {
  switch (spec.kind) {
    case 'int': {
      if (!/^\d+$/.test(raw.trim())) throw new ConfigError(`${where}: expected a whole number, got ${JSON.stringify(raw)} from ${source}`);
      const n = Number(raw.trim());
      if (!Number.isSafeInteger(n) || (spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
        throw new ConfigError(`${where}: ${n} is outside ${spec.min ?? 0}..${spec.max ?? Number.MAX_SAFE_INTEGER} (from ${source})`);
      }
      return n;
    }
    case 'bool': {
      const v = raw.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(v)) return true;
      if (['0', 'false', 'no', 'off'].includes(v)) return false;
      throw new ConfigError(`${where}: expected true or false, got ${JSON.stringify(raw)} from ${source}`);
    }
    case 'string':
      if (raw.length === 0) throw new ConfigError(`${where}: must not be empty (from ${source})`);
      return raw;
    case 'list':
      return raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  }
}

/** Parses argv (without node and the script) and env against `specs`. */
export function parseFlags(specs: readonly Spec[], envPrefix: string, argv: readonly string[], env: NodeJS.ProcessEnv): FlagValues {
  const where = (flag: string): string => `--${flag} (${envNameOf(envPrefix, flag)})`;
  const byFlag = new Map(specs.map((s) => [s.flag, s]));
  const values = new Map<string, number | boolean | string | string[]>();
  for (const spec of specs) {
    const e = env[envNameOf(envPrefix, spec.flag)];
    if (e !== undefined && e !== '') values.set(spec.flag, parseValue(spec, where(spec.flag), e, `env ${envNameOf(envPrefix, spec.flag)}`));
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new ConfigError(`unexpected argument ${JSON.stringify(arg)} (flags look like --port 7001)`);
    const eq = arg.indexOf('=');
    let name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    let negated = false;
    if (!byFlag.has(name) && name.startsWith('no-') && byFlag.get(name.slice(3))?.kind === 'bool') { name = name.slice(3); negated = true; }
    const spec = byFlag.get(name);
    if (spec === undefined) throw new ConfigError(`unknown flag --${name} (see --help)`);
    if (spec.kind === 'bool' && eq === -1) {
      // A bare boolean flag; an explicit value must use --flag=value.
      values.set(name, !negated);
      continue;
    }
    if (negated) throw new ConfigError(`--no-${name} takes no value`);
    let raw: string;
    if (eq !== -1) raw = arg.slice(eq + 1);
    else {
      if (i + 1 >= argv.length) throw new ConfigError(`--${name}: missing value`);
      raw = argv[++i]!;
    }
    values.set(name, parseValue(spec, where(name), raw, `--${name}`));
  }
  return {
    int: <D extends number | undefined>(flag: string, dflt: D) => (values.get(flag) as number | undefined) ?? dflt,
    bool: (flag, dflt) => (values.get(flag) as boolean | undefined) ?? dflt,
    str: (flag) => values.get(flag) as string | undefined,
    list: (flag) => (values.get(flag) as string[] | undefined) ?? [],
    where,
  };
}

export function usageOf(synopsis: string, specs: readonly Spec[], envPrefix: string): string {
  const lines = specs.map((s) => `  --${s.flag}${s.kind === 'bool' ? '' : ' <' + s.kind + '>'}\n      ${s.help} [env ${envNameOf(envPrefix, s.flag)}]`);
  return `usage: ${synopsis}\n\n${lines.join('\n')}\n`;
}

/**
 * A Redis to use: a standalone one by url (`urlFlag`), or the `store` section of a
 * gateway config file (`fileFlag`), which also covers Sentinel, Cluster, password, TLS
 * and prefix exactly as the gateways read them. Undefined when neither is given.
 */
export function storeFromFlags(v: FlagValues, urlFlag: string, fileFlag: string, prefixFlag: string | undefined): StoreConfig | undefined {
  const need = (flag: string, why: string): never => { throw new ConfigError(`${v.where(flag)}: ${why}`); };
  const redisUrl = v.str(urlFlag);
  const file = v.str(fileFlag);
  const prefix = prefixFlag === undefined ? undefined : v.str(prefixFlag);
  if (redisUrl !== undefined && file !== undefined) need(fileFlag, `give --${urlFlag} or --${fileFlag}, not both`);
  if (file !== undefined) {
    if (prefix !== undefined) need(prefixFlag!, `comes from store.prefix in the --${fileFlag} file`);
    try {
      return parseStoreSection(readConfigText(file));
    } catch (err) {
      if (err instanceof GatewayConfigError) need(fileFlag, `${file}: ${err.errors.join('; ')}`);
      throw err;
    }
  }
  if (redisUrl === undefined) return undefined;
  if (!/^rediss?:\/\//.test(redisUrl)) need(urlFlag, `must start with redis:// or rediss://, got ${JSON.stringify(redisUrl)}`);
  return storeConfigOf({ kind: 'redis', url: redisUrl, prefix: prefix ?? 'sluice:' });
}
