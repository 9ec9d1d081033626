import { availableParallelism } from 'node:os';
import { DEFAULT_BODY_RATE, type BodyRate } from '../../common/body-rate.js';
import type { StoreConfig } from '../../common/store-config.js';
import { join } from 'node:path';
import { isBucketName } from '../image/options-schema.js';
import { DEFAULT_LIMITS, DEFAULT_WATERMARK_LIMITS, type ImageLimits, type WatermarkLimits } from '../image/types.js';
import { masterKeysFromEnv, type MasterKeys } from '../../common/webhook-keys/master-key.js';
import type { S3ResultsConfig } from './results-s3-store.js';
import { Type, type Static } from '@sinclair/typebox';
import { BoolFlag, IntFlag, ListFlag, StringFlag, envNameOf, parseFlags, storeFromFlags, usageOf, type FlagValues } from './flags.js';

export const ENV_PREFIX = 'SLUICE_BACKEND_';

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
    /**
     * In-process delivery signs with each customer's own key, read at every attempt from
     * the gateway's keyring: in its Redis, or in the directory of a memory-store stack.
     * Undefined (or no master key): in-process delivery is off. The queue's worker reads
     * the keyring itself.
     */
    readonly keyring: KeyringSource | undefined;
    /** SLUICE_MASTER_KEY (and SLUICE_MASTER_KEY_PREVIOUS), which the keys are sealed under. */
    readonly master: MasterKeys | undefined;
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
  /** V8's initial old-space size in MB, applied at exec (see tuning.ts); 0: V8's own. */
  readonly heapInitialMb: number;
  readonly reexec: boolean;
  readonly logLevel: string;
  /** Registration in a gateway fleet's Redis (common/registry.ts); undefined: not registered. */
  readonly register: RegisterConfig | undefined;
}

export type KeyringSource = { readonly kind: 'dir'; readonly dir: string } | { readonly kind: 'redis'; readonly store: StoreConfig };

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
export const FLAGS = Type.Object({
  port: IntFlag(0, 65535, 'TCP port (0 = any free port).', { default: 7001 }),
  host: StringFlag('Address to bind.', { default: '127.0.0.1' }),
  'results-dir': Type.Optional(StringFlag('Directory for results; share it between backends of one machine. Default: a temp dir per process, removed at exit.')),
  'results-s3-bucket': Type.Optional(StringFlag('Keep results in this S3 (or S3-compatible) bucket instead of --results-dir, so every backend sharing it serves every result. Credentials: the AWS SDK chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profile, role). Default: not used.')),
  'results-s3-region': Type.Optional(StringFlag('The bucket\'s region. Default us-east-1.')),
  'results-s3-prefix': Type.Optional(StringFlag('Key prefix of results in the bucket. Default results/.')),
  'results-s3-endpoint': Type.Optional(StringFlag('Origin of an S3-compatible server (MinIO, Ceph, s3rver), e.g. http://10.0.0.7:9000. Default: AWS.')),
  'results-s3-path-style': BoolFlag(false, 'Path-style URLs (host/bucket/key), which most S3-compatible servers need.'),
  'result-ttl': IntFlag(1, 7 * 86400, 'Seconds a result is kept.', { default: 3600 }),
  'watermarks-dir': Type.Optional(StringFlag('Directory for uploaded watermarks (kept until deleted); share it between backends. Default: `<results-dir>/watermarks`, or a temp dir per process without `--results-dir`.')),
  'watermark-max-bytes': IntFlag(1, 64 * 1024 * 1024, 'Largest watermark upload in bytes.', { default: DEFAULT_WATERMARK_LIMITS.maxBytes }),
  'watermark-max-pixels': IntFlag(1, 100_000_000, 'Largest watermark width x height.', { default: DEFAULT_WATERMARK_LIMITS.maxPixels }),
  concurrency: Type.Optional(IntFlag(1, 1024, 'Jobs processed at once. Default: CPU cores (os.availableParallelism()).')),
  queue: Type.Optional(IntFlag(0, 100_000, 'Requests admitted beyond --concurrency before 503 overloaded. Default 2 x concurrency.')),
  'retry-after': IntFlag(1, 3600, 'Retry-After seconds on 503 overloaded.', { default: 1 }),
  'max-body-bytes': IntFlag(1, 2 ** 31 - 1, 'Largest input image in bytes.', { default: DEFAULT_LIMITS.maxInputBytes }),
  'max-pixels': IntFlag(1, 2 ** 40, 'Largest input width x height (x frames), checked from the header.', { default: DEFAULT_LIMITS.maxInputPixels }),
  'max-frames': IntFlag(1, 100_000, 'Most animation frames/pages.', { default: DEFAULT_LIMITS.maxFrames }),
  'max-output-width': IntFlag(1, 65535, 'Widest output.', { default: DEFAULT_LIMITS.maxOutputWidth }),
  'max-output-height': IntFlag(1, 65535, 'Tallest output.', { default: DEFAULT_LIMITS.maxOutputHeight }),
  'timeout-ms': IntFlag(100, 600_000, 'Processing timeout (and longest wait for a slot).', { default: DEFAULT_LIMITS.timeoutMs }),
  'min-body-rate': IntFlag(0, 2 ** 31 - 1, 'Slowest request body accepted, bytes/s averaged over `--body-rate-window-ms`; slower gets 408 (0 = no check).', { default: DEFAULT_BODY_RATE.bytesPerSecond }),
  'body-rate-window-ms': IntFlag(100, 600_000, 'Window of `--min-body-rate`.', { default: DEFAULT_BODY_RATE.windowMs }),
  'allow-svg': BoolFlag(DEFAULT_LIMITS.allowSvg, 'Accept SVG input.'),
  'fetch-max-bytes': Type.Optional(IntFlag(1, 2 ** 31 - 1, 'Largest body /v1/images/fetch downloads. Default: --max-body-bytes.')),
  'fetch-timeout-ms': IntFlag(100, 600_000, 'Whole-download timeout for fetches.', { default: 10000 }),
  'fetch-max-redirects': IntFlag(0, 20, 'Redirects a fetch follows.', { default: 3 }),
  'fetch-allow': ListFlag('Comma-separated addresses/CIDRs fetches and webhooks may reach although private or loopback (tests: 127.0.0.1). Default none.'),
  'webhook-redis': Type.Optional(StringFlag('redis:// URL: enqueue webhooks there (BullMQ) for `sluice-webhooks` to deliver, durably, instead of delivering them from this process. Default: in-process delivery (not durable), which needs a `--webhook-keys-*` source and `SLUICE_MASTER_KEY`.')),
  'webhook-store': Type.Optional(StringFlag('A gateway config file: enqueue webhooks in the Redis of its `store` section (standalone, Sentinel or Cluster), as `--register-store` reads it. Instead of `--webhook-redis`.')),
  'webhook-keys-dir': Type.Optional(StringFlag('In-process delivery: the memory-store gateway\'s webhook key directory (`sluice` passes its own to the backends it starts).')),
  'webhook-keys-store': Type.Optional(StringFlag('In-process delivery: a gateway config file; customers\' webhook keys are read from the Redis of its `store` section.')),
  'webhook-keys-redis': Type.Optional(StringFlag('In-process delivery: redis:// URL of the gateways\' store holding customers\' webhook keys (prefix `sluice:`). Instead of `--webhook-keys-store`.')),
  'webhook-max-attempts': IntFlag(1, 20, 'In-process delivery: attempts per webhook.', { default: 5 }),
  'webhook-base-delay-ms': IntFlag(1, 600_000, 'In-process delivery: first retry delay, doubled each attempt (at most 60 s).', { default: 1000 }),
  'webhook-timeout-ms': IntFlag(100, 600_000, 'In-process delivery: timeout of one attempt.', { default: 5000 }),
  'face-workers': IntFlag(0, 64, 'Face-detection worker threads (0 = face detection off).', { default: 1 }),
  'sharp-concurrency': Type.Optional(IntFlag(1, 1024, 'libvips threads per image. Default max(1, cores / concurrency).')),
  'sharp-cache-mb': IntFlag(0, 65536, 'libvips operation cache in MB (0 = off).', { default: 0 }),
  'uv-threadpool-size': Type.Optional(IntFlag(1, 1024, 'libuv threads (sharp jobs, fs, DNS). Default: UV_THREADPOOL_SIZE if set, else concurrency + 4.')),
  'heap-initial-mb': IntFlag(0, 65536, 'V8\'s initial old space in MB (node --initial-old-space-size), applied at exec: the buffers of uploads and outputs count against it, and a larger one makes full collections about 6x rarer under image load, for up to this much more RSS. 0 = V8\'s default.', { default: 128 }),
  reexec: BoolFlag(true, 'Re-exec with the tuned environment (allocator, UV_THREADPOOL_SIZE, --heap-initial-mb) when not already set.'),
  'log-level': StringFlag('pino level.', { default: 'info' }),
  'register-redis': Type.Optional(StringFlag('redis:// URL of the gateways\' store: register there (heartbeat) so gateways with `upstreams.N.discover` route to this backend. Default: not registered.')),
  'register-store': Type.Optional(StringFlag('A gateway config file: register in the Redis of its `store` section (standalone, Sentinel or Cluster, with its password, TLS and prefix), checked as the gateway checks it. Instead of `--register-redis`.')),
  'register-upstream': Type.Optional(StringFlag('The upstream (`discover.name`) to join; required with `--register-redis` or `--register-store`.')),
  'register-prefix': Type.Optional(StringFlag('Key prefix, the gateways\' `store.prefix` (with `--register-redis`; `--register-store` reads it from the file). Default `sluice:`.')),
  'advertise-url': Type.Optional(StringFlag('Origin gateways connect to, e.g. `http://10.0.0.5:7001`. Default `http://<host>:<port>` (required when `--host` is a wildcard).')),
  weight: IntFlag(1, 10000, 'Weight in the upstream\'s balancer.', { default: 1 }),
  'register-ttl-ms': IntFlag(300, 60_000, 'How long a registration outlives its last heartbeat (heartbeat every third of it).', { default: 1000 }),
}, { additionalProperties: false });

export function envName(flag: string): string {
  return envNameOf(ENV_PREFIX, flag);
}

export function parseBackendConfig(argv: readonly string[], env: NodeJS.ProcessEnv): BackendConfig {
  const v = parseFlags(FLAGS, ENV_PREFIX, argv, env);
  const f = v.values;
  const concurrency = f.concurrency ?? cores;
  const limits: ImageLimits = Object.freeze({
    maxInputBytes: f['max-body-bytes'],
    maxInputPixels: f['max-pixels'],
    maxFrames: f['max-frames'],
    maxOutputWidth: f['max-output-width'],
    maxOutputHeight: f['max-output-height'],
    timeoutMs: f['timeout-ms'],
    allowSvg: f['allow-svg'],
  });
  const cfg: BackendConfig = {
    host: f.host,
    port: f.port,
    resultsDir: f['results-dir'],
    resultsS3: resultsS3Config(v),
    resultTtlSeconds: f['result-ttl'],
    // Beside the results by default, so the backends `npm start` spawns (which share a results directory) share them too.
    watermarksDir: f['watermarks-dir'] ?? (f['results-dir'] !== undefined ? join(f['results-dir'], 'watermarks') : undefined),
    watermarkLimits: Object.freeze({ maxBytes: f['watermark-max-bytes'], maxPixels: f['watermark-max-pixels'] }),
    concurrency,
    queue: f.queue ?? 2 * concurrency,
    retryAfterSeconds: f['retry-after'],
    limits,
    bodyRate: { bytesPerSecond: f['min-body-rate'], windowMs: f['body-rate-window-ms'] },
    fetch: {
      maxBytes: f['fetch-max-bytes'] ?? limits.maxInputBytes,
      timeoutMs: f['fetch-timeout-ms'],
      maxRedirects: f['fetch-max-redirects'],
      allow: f['fetch-allow'],
    },
    webhook: {
      keyring: keyringSource(v),
      master: masterKeys(env, v),
      queue: storeFromFlags(v, 'webhook-redis', 'webhook-store', undefined),
      maxAttempts: f['webhook-max-attempts'],
      baseDelayMs: f['webhook-base-delay-ms'],
      timeoutMs: f['webhook-timeout-ms'],
    },
    faceWorkers: f['face-workers'],
    sharpConcurrency: f['sharp-concurrency'] ?? Math.max(1, Math.floor(cores / concurrency)),
    sharpCacheMb: f['sharp-cache-mb'],
    uvThreadpoolSize: f['uv-threadpool-size'],
    heapInitialMb: f['heap-initial-mb'],
    reexec: f.reexec,
    logLevel: f['log-level'],
    register: registerConfig(v),
  };
  v.finish();
  return cfg;
}

type Flags = FlagValues<Static<typeof FLAGS>>;

function resultsS3Config(v: Flags): S3ResultsConfig | undefined {
  const f = v.values;
  const bucket = f['results-s3-bucket'];
  if (bucket === undefined) {
    for (const flag of ['results-s3-region', 'results-s3-prefix', 'results-s3-endpoint'] as const) if (f[flag] !== undefined) v.need(flag, 'only means something with --results-s3-bucket');
    return undefined;
  }
  if (f['results-dir'] !== undefined) v.need('results-s3-bucket', 'give --results-dir or --results-s3-bucket, not both');
  // S3's bucket naming rules, so a typo fails at start rather than on the first result.
  if (!isBucketName(bucket)) v.need('results-s3-bucket', `not a valid bucket name: ${JSON.stringify(bucket)}`);
  const endpoint = f['results-s3-endpoint'];
  if (endpoint !== undefined && !/^https?:\/\/[^/]+$/.test(endpoint)) v.need('results-s3-endpoint', `must be an origin like http://10.0.0.7:9000, got ${JSON.stringify(endpoint)}`);
  const prefix = f['results-s3-prefix'] ?? 'results/';
  // eslint-disable-next-line no-control-regex -- control characters are what it refuses
  if (prefix.length > 512 || /[\x00-\x1f]/.test(prefix)) v.need('results-s3-prefix', 'must be at most 512 printable characters');
  return { bucket, region: f['results-s3-region'] ?? 'us-east-1', prefix, endpoint, forcePathStyle: f['results-s3-path-style'] };
}

/** SLUICE_MASTER_KEY (and its previous keys), shared by every process that signs; a malformed one is a problem named by its variable. */
export function masterKeys(env: NodeJS.ProcessEnv, v: Pick<FlagValues<unknown>, 'problem'>): MasterKeys | undefined {
  try {
    return masterKeysFromEnv(env);
  } catch (err) {
    v.problem((err as Error).message);
    return undefined;
  }
}

function keyringSource(v: Flags): KeyringSource | undefined {
  const dir = v.values['webhook-keys-dir'];
  const store = storeFromFlags(v, 'webhook-keys-redis', 'webhook-keys-store', undefined);
  if (dir !== undefined && store !== undefined) v.need('webhook-keys-dir', 'give one --webhook-keys-* source, not two');
  if (store !== undefined) return { kind: 'redis', store };
  return dir === undefined ? undefined : { kind: 'dir', dir };
}

function registerConfig(v: Flags): RegisterConfig | undefined {
  const f = v.values;
  const store = storeFromFlags(v, 'register-redis', 'register-store', 'register-prefix');
  if (store === undefined) {
    if (f['register-redis'] === undefined && f['register-store'] === undefined) {
      for (const flag of ['register-upstream', 'advertise-url', 'register-prefix'] as const) if (f[flag] !== undefined) v.need(flag, 'only means something with --register-redis or --register-store');
    }
    return undefined;
  }
  const upstream = f['register-upstream'];
  if (upstream === undefined) v.need('register-upstream', 'is required with --register-redis or --register-store');
  else if (!/^[A-Za-z0-9_.-]+$/.test(upstream)) v.need('register-upstream', `must be letters, digits, _ . -, got ${JSON.stringify(upstream)}`);
  const advertiseUrl = f['advertise-url'];
  if (advertiseUrl !== undefined) {
    let ok = false;
    try { const u = new URL(advertiseUrl); ok = (u.protocol === 'http:' || u.protocol === 'https:') && u.pathname === '/' && u.port !== ''; } catch { ok = false; }
    if (!ok || advertiseUrl.endsWith('/')) v.need('advertise-url', `must be an origin with a port like http://10.0.0.5:7001, got ${JSON.stringify(advertiseUrl)}`);
  } else if (f.host === '0.0.0.0' || f.host === '::') {
    v.need('advertise-url', `is required when --host is ${f.host} (gateways cannot connect to a wildcard address)`);
  }
  return { store, upstream: upstream ?? '', advertiseUrl, weight: f.weight, ttlMs: f['register-ttl-ms'] };
}

export function usage(): string {
  return usageOf('sluice-backend --port N [flags]', FLAGS, ENV_PREFIX);
}
