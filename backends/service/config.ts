import { availableParallelism } from 'node:os';
import { DEFAULT_BODY_RATE, type BodyRate } from '../../common/body-rate.js';
import type { StoreConfig } from '../../gateway/config/types.js';
import { join } from 'node:path';
import { isBucketName } from '../image/options.js';
import { DEFAULT_LIMITS, DEFAULT_WATERMARK_LIMITS, type ImageLimits, type WatermarkLimits } from '../image/types.js';
import { parseWebhookSecret, type WebhookKeys } from '../net/webhook-signing.js';
import type { S3ResultsConfig } from './results-s3-store.js';
import { ConfigError, envNameOf, parseFlags, storeFromFlags, usageOf, type FlagValues, type Spec } from './flags.js';

export { ConfigError };

const ENV_PREFIX = 'SLUICE_BACKEND_';

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
  /** Results in S3-compatible storage instead of resultsDir. */
  readonly resultsS3: S3ResultsConfig | undefined;
  readonly resultTtlSeconds: number;
  /** Undefined: a temp directory per process. */
  readonly watermarksDir: string | undefined;
  readonly watermarkLimits: WatermarkLimits;
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
    /** From SLUICE_WEBHOOK_SECRET; needed for in-process delivery (the queue's worker signs with its own). */
    readonly keys: WebhookKeys | undefined;
    /** Undefined: deliver in-process; else enqueue in this Redis for sluice-webhooks. */
    readonly queue: StoreConfig | undefined;
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

const cores = availableParallelism();

/** Every flag, in the order `--help` prints them. */
export const FLAGS: readonly Spec[] = [
  { flag: 'port', kind: 'int', min: 0, max: 65535, help: 'TCP port (0 = any free port). Default 7001.' },
  { flag: 'host', kind: 'string', help: 'Address to bind. Default 127.0.0.1.' },
  { flag: 'results-dir', kind: 'string', help: 'Directory for results; share it between backends of one machine. Default: a temp dir per process, removed at exit.' },
  { flag: 'results-s3-bucket', kind: 'string', help: 'Keep results in this S3 (or S3-compatible) bucket instead of --results-dir, so every backend sharing it serves every result. Credentials: the AWS SDK chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profile, role). Default: not used.' },
  { flag: 'results-s3-region', kind: 'string', help: 'The bucket\'s region. Default us-east-1.' },
  { flag: 'results-s3-prefix', kind: 'string', help: 'Key prefix of results in the bucket. Default results/.' },
  { flag: 'results-s3-endpoint', kind: 'string', help: 'Origin of an S3-compatible server (MinIO, Ceph, s3rver), e.g. http://10.0.0.7:9000. Default: AWS.' },
  { flag: 'results-s3-path-style', kind: 'bool', help: 'Path-style URLs (host/bucket/key), which most S3-compatible servers need. Default false.' },
  { flag: 'result-ttl', kind: 'int', min: 1, max: 7 * 86400, help: 'Seconds a result is kept. Default 3600.' },
  { flag: 'watermarks-dir', kind: 'string', help: 'Directory for uploaded watermarks (kept until deleted); share it between backends. Default: <results-dir>/watermarks, or a temp dir per process without --results-dir.' },
  { flag: 'watermark-max-bytes', kind: 'int', min: 1, max: 64 * 1024 * 1024, help: `Largest watermark upload in bytes. Default ${DEFAULT_WATERMARK_LIMITS.maxBytes}.` },
  { flag: 'watermark-max-pixels', kind: 'int', min: 1, max: 100_000_000, help: `Largest watermark width x height. Default ${DEFAULT_WATERMARK_LIMITS.maxPixels}.` },
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
  { flag: 'webhook-redis', kind: 'string', help: 'redis:// URL: enqueue webhooks there (BullMQ) for sluice-webhooks to deliver, durably, instead of delivering them from this process. Default: in-process delivery (not durable), needs SLUICE_WEBHOOK_SECRET.' },
  { flag: 'webhook-store', kind: 'string', help: 'A gateway config file: enqueue webhooks in the Redis of its store section (standalone, Sentinel or Cluster), as --register-store reads it. Instead of --webhook-redis.' },
  { flag: 'webhook-max-attempts', kind: 'int', min: 1, max: 20, help: 'In-process delivery: attempts per webhook. Default 5.' },
  { flag: 'webhook-base-delay-ms', kind: 'int', min: 1, max: 600_000, help: 'In-process delivery: first retry delay, doubled each attempt (at most 60 s). Default 1000.' },
  { flag: 'webhook-timeout-ms', kind: 'int', min: 100, max: 600_000, help: 'In-process delivery: timeout of one attempt. Default 5000.' },
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
  return envNameOf(ENV_PREFIX, flag);
}

export function parseBackendConfig(argv: readonly string[], env: NodeJS.ProcessEnv): BackendConfig {
  const v = parseFlags(FLAGS, ENV_PREFIX, argv, env);
  const { int, bool, str, list } = v;

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
  return {
    host: str('host') ?? '127.0.0.1',
    port: int('port', 7001),
    resultsDir: str('results-dir'),
    resultsS3: resultsS3Config(v),
    resultTtlSeconds: int('result-ttl', 3600),
    // Beside the results by default, so the backends `npm start` spawns (which share a results directory) share them too.
    watermarksDir: str('watermarks-dir') ?? (str('results-dir') !== undefined ? join(str('results-dir')!, 'watermarks') : undefined),
    watermarkLimits: Object.freeze({
      maxBytes: int('watermark-max-bytes', DEFAULT_WATERMARK_LIMITS.maxBytes),
      maxPixels: int('watermark-max-pixels', DEFAULT_WATERMARK_LIMITS.maxPixels),
    }),
    concurrency,
    queue: int('queue', 2 * concurrency),
    retryAfterSeconds: int('retry-after', 1),
    limits,
    bodyRate: { bytesPerSecond: int('min-body-rate', DEFAULT_BODY_RATE.bytesPerSecond), windowMs: int('body-rate-window-ms', DEFAULT_BODY_RATE.windowMs) },
    fetch: {
      maxBytes: int('fetch-max-bytes', maxInputBytes),
      timeoutMs: int('fetch-timeout-ms', 10_000),
      maxRedirects: int('fetch-max-redirects', 3),
      allow: list('fetch-allow'),
    },
    webhook: {
      keys: webhookKeys(env),
      queue: storeFromFlags(v, 'webhook-redis', 'webhook-store', undefined),
      maxAttempts: int('webhook-max-attempts', 5),
      baseDelayMs: int('webhook-base-delay-ms', 1000),
      timeoutMs: int('webhook-timeout-ms', 5000),
    },
    faceWorkers: int('face-workers', 1),
    sharpConcurrency: int('sharp-concurrency', Math.max(1, Math.floor(cores / concurrency))),
    sharpCacheMb: int('sharp-cache-mb', 0),
    uvThreadpoolSize: int('uv-threadpool-size', undefined),
    reexec: bool('reexec', true),
    logLevel: str('log-level') ?? 'info',
    register: registerConfig(v, str('host') ?? '127.0.0.1'),
  };
}

function resultsS3Config(v: FlagValues): S3ResultsConfig | undefined {
  const need = (flag: string, why: string): never => { throw new ConfigError(`${v.where(flag)}: ${why}`); };
  const bucket = v.str('results-s3-bucket');
  const others = ['results-s3-region', 'results-s3-prefix', 'results-s3-endpoint'];
  if (bucket === undefined) {
    for (const f of others) if (v.str(f) !== undefined) need(f, 'only means something with --results-s3-bucket');
    return undefined;
  }
  if (v.str('results-dir') !== undefined) need('results-s3-bucket', 'give --results-dir or --results-s3-bucket, not both');
  // S3's bucket naming rules, so a typo fails at start rather than on the first result.
  if (!isBucketName(bucket)) need('results-s3-bucket', `not a valid bucket name: ${JSON.stringify(bucket)}`);
  const endpoint = v.str('results-s3-endpoint');
  if (endpoint !== undefined && !/^https?:\/\/[^/]+$/.test(endpoint)) need('results-s3-endpoint', `must be an origin like http://10.0.0.7:9000, got ${JSON.stringify(endpoint)}`);
  const prefix = v.str('results-s3-prefix') ?? 'results/';
  if (prefix.length > 512 || /[\x00-\x1f]/.test(prefix)) need('results-s3-prefix', 'must be at most 512 printable characters');
  return { bucket, region: v.str('results-s3-region') ?? 'us-east-1', prefix, endpoint, forcePathStyle: v.bool('results-s3-path-style', false) };
}

/** SLUICE_WEBHOOK_SECRET, shared by every process that signs (see webhook-signing.ts). */
export function webhookKeys(env: NodeJS.ProcessEnv): WebhookKeys | undefined {
  const text = env.SLUICE_WEBHOOK_SECRET;
  if (text === undefined || text === '') return undefined;
  try {
    return parseWebhookSecret(text);
  } catch (err) {
    throw new ConfigError(`SLUICE_WEBHOOK_SECRET: ${(err as Error).message}`);
  }
}

function registerConfig(v: FlagValues, host: string): RegisterConfig | undefined {
  const { str, int } = v;
  const need = (flag: string, why: string): never => { throw new ConfigError(`${v.where(flag)}: ${why}`); };
  const store = storeFromFlags(v, 'register-redis', 'register-store', 'register-prefix');
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

export function usage(): string {
  return usageOf('sluice-backend --port N [flags]', FLAGS, ENV_PREFIX);
}
