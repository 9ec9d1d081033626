import { availableParallelism } from 'node:os';
import { DEFAULT_BODY_RATE, type BodyRate } from '../../gateway/http/body-rate.js';
import { ConfigError as GatewayConfigError, parseStoreSection, readConfigText, storeConfigOf } from '../../gateway/config/load.js';
import type { StoreConfig } from '../../gateway/config/types.js';
import { DEFAULT_LIMITS, type ImageLimits } from '../image/types.js';

/**
 * `sluice-backend` settings: every one a flag (`--name value` or `--name=value`) and an
 * environment variable (`SLUICE_BACKEND_NAME`), the flag winning. Validated once at
 * start; an error names the flag and the variable so the operator knows what to fix.
 * This module must not import sharp: the launcher parses the config before it decides
 * whether to re-exec with the tuned environment (see cli.ts).
 */
export interface BackendConfig {
  readonly host: string;
  readonly port: number;
  readonly resultsDir: string | undefined;
  readonly resultTtlSeconds: number;
  readonly concurrency: number;
  readonly queue: number;
  readonly retryAfterSeconds: number;
  readonly limits: ImageLimits;
  /** The slowest upload accepted (408 below it), as the gateway's server.min_body_rate. */
  readonly bodyRate: BodyRate;
  readonly fetch: {
    readonly maxBytes: number;
    readonly timeoutMs: number;
    readonly maxRedirects: number;
    readonly allow: readonly string[];
  };
  readonly webhook: {
    readonly secret: string | undefined;
    readonly maxAttempts: number;
    readonly baseDelayMs: number;
    readonly timeoutMs: number;
  };
  readonly faceWorkers: number;
  readonly sharpConcurrency: number;
  readonly sharpCacheMb: number;
  /** Undefined: keep UV_THREADPOOL_SIZE from the environment, else concurrency + 4 (see tuning.ts). */
  readonly uvThreadpoolSize: number | undefined;
  readonly reexec: boolean;
  readonly logLevel: string;
  /** Registration in a gateway fleet's Redis (gateway/upstream/registry.ts); undefined: not registered. */
  readonly register: RegisterConfig | undefined;
}

export interface RegisterConfig {
  /** The gateways' store: from --register-redis (standalone) or the store section of --register-store. */
  readonly store: StoreConfig;
  readonly upstream: string;
  /** Undefined: http://<host>:<bound port>, known only after listen. */
  readonly advertiseUrl: string | undefined;
  readonly weight: number;
  readonly ttlMs: number;
}

export class ConfigError extends Error {}

type Kind = 'int' | 'bool' | 'string' | 'list';
interface Spec {
  readonly flag: string;
  readonly kind: Kind;
  readonly min?: number;
  readonly max?: number;
  readonly help: string;
}

const cores = availableParallelism();

/** Every flag, in the order `--help` prints them. */
export const FLAGS: readonly Spec[] = [
  { flag: 'port', kind: 'int', min: 0, max: 65535, help: 'TCP port (0 = any free port). Default 7001.' },
  { flag: 'host', kind: 'string', help: 'Address to bind. Default 127.0.0.1.' },
  { flag: 'results-dir', kind: 'string', help: 'Directory for results; share it between backends of one machine. Default: a temp dir per process, removed at exit.' },
  { flag: 'result-ttl', kind: 'int', min: 1, max: 7 * 86400, help: 'Seconds a result is kept. Default 3600.' },
  { flag: 'concurrency', kind: 'int', min: 1, max: 1024, help: `Jobs processed at once. Default: CPU cores (${cores}).` },
  { flag: 'queue', kind: 'int', min: 0, max: 100_000, help: 'Requests admitted beyond --concurrency before 503 overloaded. Default 2 x concurrency.' },
  { flag: 'retry-after', kind: 'int', min: 1, max: 3600, help: 'Retry-After seconds on 503 overloaded. Default 1.' },
  { flag: 'max-body-bytes', kind: 'int', min: 1, max: 2 ** 31 - 1, help: `Largest input image in bytes. Default ${DEFAULT_LIMITS.maxInputBytes}.` },
  { flag: 'max-pixels', kind: 'int', min: 1, max: 2 ** 40, help: `Largest input width x height (x frames), checked from the header. Default ${DEFAULT_LIMITS.maxInputPixels}.` },
  { flag: 'max-frames', kind: 'int', min: 1, max: 100_000, help: `Most animation frames/pages. Default ${DEFAULT_LIMITS.maxFrames}.` },
  { flag: 'max-output-width', kind: 'int', min: 1, max: 65535, help: `Widest output. Default ${DEFAULT_LIMITS.maxOutputWidth}.` },
  { flag: 'max-output-height', kind: 'int', min: 1, max: 65535, help: `Tallest output. Default ${DEFAULT_LIMITS.maxOutputHeight}.` },
  { flag: 'timeout-ms', kind: 'int', min: 100, max: 600_000, help: `Processing timeout (and longest wait for a slot). Default ${DEFAULT_LIMITS.timeoutMs}.` },
  { flag: 'min-body-rate', kind: 'int', min: 0, max: 2 ** 31 - 1, help: `Slowest request body accepted, bytes/s averaged over --body-rate-window-ms; slower gets 408 (0 = no check). Default ${DEFAULT_BODY_RATE.bytesPerSecond}.` },
  { flag: 'body-rate-window-ms', kind: 'int', min: 100, max: 600_000, help: `Window of --min-body-rate. Default ${DEFAULT_BODY_RATE.windowMs}.` },
  { flag: 'allow-svg', kind: 'bool', help: 'Accept SVG input. Default false.' },
  { flag: 'fetch-max-bytes', kind: 'int', min: 1, max: 2 ** 31 - 1, help: 'Largest body /v1/images/fetch downloads. Default: --max-body-bytes.' },
  { flag: 'fetch-timeout-ms', kind: 'int', min: 100, max: 600_000, help: 'Whole-download timeout for fetches. Default 10000.' },
  { flag: 'fetch-max-redirects', kind: 'int', min: 0, max: 20, help: 'Redirects a fetch follows. Default 3.' },
  { flag: 'fetch-allow', kind: 'list', help: 'Comma-separated addresses/CIDRs fetches and webhooks may reach although private or loopback (tests: 127.0.0.1). Default none.' },
  { flag: 'webhook-secret', kind: 'string', help: 'HMAC-SHA256 key for webhook signatures; webhooks are refused (400) without it. Prefer the env variable.' },
  { flag: 'webhook-max-attempts', kind: 'int', min: 1, max: 20, help: 'Delivery attempts per webhook. Default 5.' },
  { flag: 'webhook-base-delay-ms', kind: 'int', min: 1, max: 600_000, help: 'First retry delay, doubled each attempt. Default 1000.' },
  { flag: 'webhook-timeout-ms', kind: 'int', min: 100, max: 600_000, help: 'Timeout of one delivery attempt. Default 5000.' },
  { flag: 'face-workers', kind: 'int', min: 0, max: 64, help: 'Face-detection worker threads (0 = face detection off). Default 1.' },
  { flag: 'sharp-concurrency', kind: 'int', min: 1, max: 1024, help: 'libvips threads per image. Default max(1, cores / concurrency).' },
  { flag: 'sharp-cache-mb', kind: 'int', min: 0, max: 65536, help: 'libvips operation cache in MB (0 = off). Default 0.' },
  { flag: 'uv-threadpool-size', kind: 'int', min: 1, max: 1024, help: 'libuv threads (sharp jobs, fs, DNS). Default: UV_THREADPOOL_SIZE if set, else concurrency + 4.' },
  { flag: 'reexec', kind: 'bool', help: 'Re-exec with the tuned environment (allocator, UV_THREADPOOL_SIZE) when not already set. Default true.' },
  { flag: 'log-level', kind: 'string', help: 'pino level. Default info.' },
  { flag: 'register-redis', kind: 'string', help: 'redis:// URL of the gateways\' store: register there (heartbeat) so gateways with upstreams.N.discover route to this backend. Default: not registered.' },
  { flag: 'register-store', kind: 'string', help: 'A gateway config file: register in the Redis of its store section (standalone, Sentinel or Cluster, with its password, TLS and prefix), checked as the gateway checks it. Instead of --register-redis.' },
  { flag: 'register-upstream', kind: 'string', help: 'The upstream (discover name) to join; required with --register-redis or --register-store.' },
  { flag: 'register-prefix', kind: 'string', help: 'Key prefix, the gateways\' store.prefix (with --register-redis; --register-store reads it from the file). Default sluice:.' },
  { flag: 'advertise-url', kind: 'string', help: 'Origin gateways connect to, e.g. http://10.0.0.5:7001. Default http://<host>:<port> (required when --host is a wildcard).' },
  { flag: 'weight', kind: 'int', min: 1, max: 10000, help: 'Weight in the upstream\'s balancer. Default 1.' },
  { flag: 'register-ttl-ms', kind: 'int', min: 300, max: 60_000, help: 'How long a registration outlives its last heartbeat (heartbeat every third of it). Default 1000.' },
];

export function envName(flag: string): string {
  return `SLUICE_BACKEND_${flag.toUpperCase().replace(/-/g, '_')}`;
}

function parseValue(spec: Spec, raw: string, source: string): number | boolean | string | string[] {
  const where = `--${spec.flag} (${envName(spec.flag)})`;
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

/** Parses argv (without node and the script) and env into a validated config. */
export function parseBackendConfig(argv: readonly string[], env: NodeJS.ProcessEnv): BackendConfig {
  const byFlag = new Map(FLAGS.map((s) => [s.flag, s]));
  const values = new Map<string, number | boolean | string | string[]>();
  for (const spec of FLAGS) {
    const e = env[envName(spec.flag)];
    if (e !== undefined && e !== '') values.set(spec.flag, parseValue(spec, e, `env ${envName(spec.flag)}`));
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
    values.set(name, parseValue(spec, raw, `--${name}`));
  }

  const int = (flag: string, dflt: number): number => (values.get(flag) as number | undefined) ?? dflt;
  const bool = (flag: string, dflt: boolean): boolean => (values.get(flag) as boolean | undefined) ?? dflt;
  const str = (flag: string): string | undefined => values.get(flag) as string | undefined;

  const concurrency = int('concurrency', cores);
  const maxInputBytes = int('max-body-bytes', DEFAULT_LIMITS.maxInputBytes);
  const limits: ImageLimits = Object.freeze({
    maxInputBytes,
    maxInputPixels: int('max-pixels', DEFAULT_LIMITS.maxInputPixels),
    maxFrames: int('max-frames', DEFAULT_LIMITS.maxFrames),
    maxOutputWidth: int('max-output-width', DEFAULT_LIMITS.maxOutputWidth),
    maxOutputHeight: int('max-output-height', DEFAULT_LIMITS.maxOutputHeight),
    timeoutMs: int('timeout-ms', DEFAULT_LIMITS.timeoutMs),
    allowSvg: bool('allow-svg', DEFAULT_LIMITS.allowSvg),
  });
  const secret = str('webhook-secret');
  if (secret !== undefined && secret.length < 16) {
    throw new ConfigError(`--webhook-secret (${envName('webhook-secret')}): must be at least 16 characters`);
  }
  return {
    host: str('host') ?? '127.0.0.1',
    port: int('port', 7001),
    resultsDir: str('results-dir'),
    resultTtlSeconds: int('result-ttl', 3600),
    concurrency,
    queue: int('queue', 2 * concurrency),
    retryAfterSeconds: int('retry-after', 1),
    limits,
    bodyRate: { bytesPerSecond: int('min-body-rate', DEFAULT_BODY_RATE.bytesPerSecond), windowMs: int('body-rate-window-ms', DEFAULT_BODY_RATE.windowMs) },
    fetch: {
      maxBytes: int('fetch-max-bytes', maxInputBytes),
      timeoutMs: int('fetch-timeout-ms', 10_000),
      maxRedirects: int('fetch-max-redirects', 3),
      allow: (values.get('fetch-allow') as string[] | undefined) ?? [],
    },
    webhook: {
      secret,
      maxAttempts: int('webhook-max-attempts', 5),
      baseDelayMs: int('webhook-base-delay-ms', 1000),
      timeoutMs: int('webhook-timeout-ms', 5000),
    },
    faceWorkers: int('face-workers', 1),
    sharpConcurrency: int('sharp-concurrency', Math.max(1, Math.floor(cores / concurrency))),
    sharpCacheMb: int('sharp-cache-mb', 0),
    uvThreadpoolSize: values.get('uv-threadpool-size') as number | undefined,
    reexec: bool('reexec', true),
    logLevel: str('log-level') ?? 'info',
    register: registerConfig(str, int, str('host') ?? '127.0.0.1'),
  };
}

function registerConfig(str: (f: string) => string | undefined, int: (f: string, d: number) => number, host: string): RegisterConfig | undefined {
  const need = (flag: string, why: string): never => { throw new ConfigError(`--${flag} (${envName(flag)}): ${why}`); };
  const store = registerStore(str, need);
  if (store === undefined) {
    for (const f of ['register-upstream', 'advertise-url', 'register-prefix']) if (str(f) !== undefined) need(f, 'only means something with --register-redis or --register-store');
    return undefined;
  }
  const upstream = str('register-upstream') ?? need('register-upstream', 'is required with --register-redis or --register-store');
  if (!/^[A-Za-z0-9_.-]+$/.test(upstream)) need('register-upstream', `must be letters, digits, _ . -, got ${JSON.stringify(upstream)}`);
  const advertiseUrl = str('advertise-url');
  if (advertiseUrl !== undefined) {
    let ok = false;
    try { const u = new URL(advertiseUrl); ok = (u.protocol === 'http:' || u.protocol === 'https:') && u.pathname === '/' && u.port !== ''; } catch { ok = false; }
    if (!ok || advertiseUrl.endsWith('/')) need('advertise-url', `must be an origin with a port like http://10.0.0.5:7001, got ${JSON.stringify(advertiseUrl)}`);
  } else if (host === '0.0.0.0' || host === '::') {
    need('advertise-url', `is required when --host is ${host} (gateways cannot connect to a wildcard address)`);
  }
  return { store, upstream, advertiseUrl, weight: int('weight', 1), ttlMs: int('register-ttl-ms', 1000) };
}

/**
 * Where to register: a standalone Redis by url, or the `store` section of a gateway
 * config file, which also covers Sentinel, Cluster, password and TLS exactly as the
 * gateways read them.
 */
function registerStore(str: (f: string) => string | undefined, need: (flag: string, why: string) => never): StoreConfig | undefined {
  const redisUrl = str('register-redis');
  const file = str('register-store');
  if (redisUrl !== undefined && file !== undefined) need('register-store', 'give --register-redis or --register-store, not both');
  if (file !== undefined) {
    if (str('register-prefix') !== undefined) need('register-prefix', 'comes from store.prefix in the --register-store file');
    try {
      return parseStoreSection(readConfigText(file));
    } catch (err) {
      if (err instanceof GatewayConfigError) need('register-store', `${file}: ${err.errors.join('; ')}`);
      throw err;
    }
  }
  if (redisUrl === undefined) return undefined;
  if (!/^rediss?:\/\//.test(redisUrl)) need('register-redis', `must start with redis:// or rediss://, got ${JSON.stringify(redisUrl)}`);
  return storeConfigOf({ kind: 'redis', url: redisUrl, prefix: str('register-prefix') ?? 'sluice:' });
}

export function usage(): string {
  const lines = FLAGS.map((s) => `  --${s.flag}${s.kind === 'bool' ? '' : ' <' + s.kind + '>'}\n      ${s.help} [env ${envName(s.flag)}]`);
  return `usage: sluice-backend --port N [flags]\n\n${lines.join('\n')}\n`;
}
