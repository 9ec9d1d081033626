// The validated, frozen shape the rest of the gateway trusts. Field names follow
// the YAML (snake_case) so an operator can grep a setting from config to code.

export type FailurePolicy = 'open' | 'closed';
export type LimitScope = 'customer' | 'key';

export interface PlanConfig {
  readonly name: string;
  /** Token bucket refill, tokens per second. 0 disables the bucket. */
  readonly rate: number;
  readonly burst: number;
  /** 0 means unlimited. */
  readonly quota_day: number;
  readonly quota_month: number;
  readonly max_inflight: number;
  readonly max_body_bytes: number;
  readonly priority: number;
  readonly scope: LimitScope;
  readonly failure_policy: FailurePolicy | undefined;
  /** Decide and count, but let every request through (trying a plan on live traffic). */
  readonly shadow: boolean;
  /** Longest a store denial is remembered in this process (gateway/limits/deny-cache.ts); 0 turns that off. */
  readonly deny_cache_ms: number;
}

export type LimitOverrides = Partial<Pick<PlanConfig,
  'rate' | 'burst' | 'quota_day' | 'quota_month' | 'max_inflight' | 'max_body_bytes'>>;

export interface CustomerConfig {
  readonly id: string;
  readonly plan: string | undefined;
  readonly overrides: LimitOverrides;
}

export interface StaticKeyConfig {
  /** Lower-case hex SHA-256 (or HMAC-SHA256 with the pepper) of the key. */
  readonly digest: string;
  readonly customer: string;
  readonly plan: string | undefined;
  readonly label: string | undefined;
}

export interface JwtKeyConfig {
  readonly kid: string | undefined;
  /** HS256 shared secret (utf-8) or a PEM public key (RS256/ES256). */
  readonly secret: string | undefined;
  readonly pem: string | undefined;
}

export interface JwtConfig {
  readonly algorithms: readonly ('HS256' | 'RS256' | 'ES256')[];
  readonly issuer: string | undefined;
  readonly audience: string | undefined;
  readonly keys: readonly JwtKeyConfig[];
  readonly jwks_url: string | undefined;
  readonly customer_claim: string;
  readonly plan_claim: string;
  readonly clock_tolerance_s: number;
}

export interface AuthConfig {
  readonly pepper: string | undefined;
  readonly cache_ttl_ms: number;
  readonly negative_cache_ttl_ms: number;
  /** How long past cache_ttl_ms a key's identity is still served while the store cannot be asked. */
  readonly stale_if_error_ms: number;
  readonly cache_max: number;
  readonly keys: readonly StaticKeyConfig[];
  readonly jwt: JwtConfig | undefined;
}

export interface StoreConfig {
  readonly kind: 'memory' | 'redis';
  readonly url: string | undefined;
  readonly timeout_ms: number;
  readonly failure_policy: FailurePolicy;
  readonly prefix: string;
  /** How long the open breaker waits between probes. */
  readonly probe_interval_ms: number;
  readonly breaker: BreakerConfig;
  /** Gateway processes a fail-open share assumes until this one has counted the fleet (gateway/guard/fleet.ts). */
  readonly fleet_floor: number;
  readonly lease: LeaseConfig;
  /** Absent means standalone, so configs (and tests) written before Sentinel/Cluster still read. */
  readonly mode?: StoreMode;
  /** Sentinel mode: `host:port` of each sentinel. */
  readonly sentinels?: readonly { readonly host: string; readonly port: number }[];
  /** Sentinel mode: the monitored master's name. */
  readonly sentinel_name?: string;
  /** Cluster mode: seed nodes (`redis://host:port`); the rest of the topology is discovered. */
  readonly nodes?: readonly string[];
  /** Wins over a password in the url; in Sentinel mode it is the data nodes' password. */
  readonly password?: string;
  /** Present means TLS to every data node (and to the sentinels). */
  readonly tls?: StoreTlsConfig;
}

/** Token leases: batches of tokens taken from the shared bucket (gateway/limits/token-leases.ts). */
export interface LeaseConfig {
  readonly enabled: boolean;
  /** How much of a subject's traffic at this gateway one batch should cover, ms. */
  readonly target_ms: number;
  /** The largest batch, as a share of the burst (and of each quota). */
  readonly max_share: number;
}

/** When the store breaker opens (gateway/guard/breaker.ts). */
export interface BreakerConfig {
  readonly consecutive_failures: number;
  readonly failure_percent: number;
  readonly min_calls: number;
  readonly window_ms: number;
}

export type StoreMode = 'standalone' | 'sentinel' | 'cluster';

export interface StoreTlsConfig {
  /** PEM file of the CA that signed the servers' certificates (default: the system's CAs). */
  readonly ca?: string;
  readonly servername?: string;
  /** PEM files for client-certificate authentication (both or neither). */
  readonly cert?: string;
  readonly key?: string;
  readonly reject_unauthorized: boolean;
}

export interface ServerConfig {
  readonly host: string;
  readonly port: number;
  readonly max_header_bytes: number;
  readonly headers_timeout_ms: number;
  readonly request_timeout_ms: number;
  readonly keep_alive_timeout_ms: number;
  readonly trust_forwarded: boolean;
  /** Slowest request body accepted, bytes/s averaged over body_rate_window_ms (0: no check); slower gets 408. */
  readonly min_body_rate: number;
  readonly body_rate_window_ms: number;
  /** SIGTERM/SIGINT/reload: how long in-flight requests may run on after the listener closes. */
  readonly drain_timeout_ms: number;
}

export interface AdminConfig {
  readonly host: string;
  readonly port: number;
  readonly token_digest: string | undefined;
}

/** One backend of an upstream. `targets: [url]` is shorthand for `{url}` with every default. */
export interface TargetConfig {
  readonly url: string;
  /** Relative share for the weighted balancers (and a cost divisor for the load-aware ones). */
  readonly weight: number;
  /** Used only while no primary target is available (nginx `backup`). */
  readonly backup: boolean;
  /** nginx `max_fails`: consecutive failures that eject this target (0: never); overrides outlier.consecutive_failures. */
  readonly max_fails: number | undefined;
  /** nginx `fail_timeout`: a fixed ejection time for this target, instead of the growing outlier one. */
  readonly fail_timeout_ms: number | undefined;
}

export type BalancerKind = 'round_robin' | 'weighted_round_robin' | 'least_outstanding' | 'p2c_ewma';

/** Active health checks: GET `path` on every target each interval. */
export interface HealthCheckConfig {
  readonly path: string;
  readonly interval_ms: number;
  readonly timeout_ms: number;
  /** Consecutive passing checks that bring a down (or ejected) target back. */
  readonly healthy_threshold: number;
  /** Consecutive failing checks that take a target out. */
  readonly unhealthy_threshold: number;
}

/** Passive outlier ejection from the answers real requests get. */
export interface OutlierConfig {
  /** 5xx answers or connect/reset/timeout errors in a row that eject a target (0: never). */
  readonly consecutive_failures: number;
  /** The first ejection lasts this long; the n-th, n times as long (up to max_ejection_ms). */
  readonly base_ejection_ms: number;
  readonly max_ejection_ms: number;
  /** Never eject more than this share of the upstream's targets at once. */
  readonly max_ejection_percent: number;
}

/**
 * Retries on another target (gateway/proxy/retry.ts has the rules): `attempts` retries at
 * most after the first try, and never more retries in a rolling second than the larger of
 * min_per_second and budget_percent of that second's requests.
 */
export interface RetryConfig {
  readonly attempts: number;
  readonly budget_percent: number;
  readonly min_per_second: number;
  /** Request bodies up to this size are kept in memory while they stream, so a retry can replay them. */
  readonly max_buffered_body_bytes: number;
}

/** Per-target circuit breaking: a target at a limit is skipped, or the request gets 503 overloaded. */
export interface CircuitConfig {
  /** The target's undici Pool size (defaults to the upstream's `connections`). */
  readonly max_connections: number;
  /** Requests waiting for a pool connection (0: no limit). */
  readonly max_pending: number;
  /** Requests sent through this gateway and not finished (0: no limit). */
  readonly max_inflight: number;
}

export interface UpstreamConfig {
  readonly name: string;
  readonly targets: readonly TargetConfig[];
  readonly balancer: BalancerKind;
  /** p2c_ewma: how fast a latency sample fades (the EWMA's time constant). */
  readonly ewma_decay_ms: number;
  readonly health: HealthCheckConfig | undefined;
  readonly outlier: OutlierConfig;
  readonly connections: number;
  readonly connect_timeout_ms: number;
  readonly headers_timeout_ms: number;
  readonly body_timeout_ms: number;
  readonly retry: RetryConfig;
  readonly circuit: CircuitConfig;
  /** Targets that register themselves in Redis, alongside the static ones (redis store only). */
  readonly discover?: DiscoverConfig;
}

/** `upstreams.N.discover`: `true`, or a mapping to change the defaults. */
export interface DiscoverConfig {
  /** The name backends register under (sluice-backend --register-upstream); default: the upstream's name. */
  readonly name: string;
  /** The safety-net poll; joins and clean leaves arrive at once over pub/sub. */
  readonly poll_interval_ms: number;
}

export interface RouteConfig {
  readonly name: string;
  readonly prefix: string;
  readonly upstream: string;
  /** A public route skips auth and limits (result downloads are capabilities). */
  readonly public: boolean;
  readonly plans: readonly string[] | undefined;
  readonly max_body_bytes: number | undefined;
  /** nginx `limit_req` on this route, checked in order (gateway/limit-req/CONFIG.md). */
  readonly limit_req: readonly LimitReqRule[];
  /** nginx `limit_req_status`: what a rejected request gets (nginx's default is 503). */
  readonly limit_req_status: number;
  /** nginx `limit_conn` on this route. */
  readonly limit_conn: readonly LimitConnRule[];
  readonly limit_conn_status: number;
}

/**
 * What a zone is keyed by, like the variable in `limit_req_zone $var`: the client
 * address (`$remote_addr`), one request header (`$http_x_api_key`; the name is stored
 * lower-case), or the customer Sluice authenticated (no nginx variable; needs auth).
 */
export type ZoneKey =
  | { readonly source: 'client' }
  | { readonly source: 'header'; readonly header: string }
  | { readonly source: 'customer' };

/** `limit_req_zone KEY zone=NAME:SIZE rate=R` (kind nginx_limit_req). */
export interface LimitReqZoneConfig {
  readonly name: string;
  readonly key: ZoneKey;
  /** The rate as written (`10r/s`, `30r/m`). */
  readonly rate: string;
  /** nginx's internal unit: milli-requests per second, `N*1000` for r/s, `floor(N*1000/60)` for r/m. */
  readonly rate_milli: number;
  /** The nginx zone size as written (`10m`), kept for the importer's fidelity; not enforced. */
  readonly size: string | undefined;
}

/** One `limit_req zone=NAME [burst=N] [nodelay | delay=N]`. */
export interface LimitReqRule {
  readonly zone: string;
  readonly burst: number;
  /** Requests up to this excess pass at once; nodelay is stored as delay = burst. */
  readonly delay: number;
  readonly nodelay: boolean;
}

/** `limit_conn_zone KEY zone=NAME:SIZE`. */
export interface LimitConnZoneConfig {
  readonly name: string;
  readonly key: ZoneKey;
  readonly size: string | undefined;
}

/** One `limit_conn NAME MAX`. */
export interface LimitConnRule {
  readonly zone: string;
  readonly max: number;
}

export interface SpawnBackendConfig {
  readonly port: number;
}

/**
 * Priority load shedding (gateway/shed/): past a threshold, the lowest-priority plans get
 * 503 `overloaded` first. A threshold of 0 turns its signal off; both 0 turns shedding off.
 */
export interface ShedConfig {
  /** Requests open in this process (per worker) at which shedding starts. */
  readonly max_inflight: number;
  /** Mean event-loop delay over one sample window at which shedding starts. */
  readonly max_event_loop_delay_ms: number;
  /** How often the event-loop delay is read and the shed level reconsidered. */
  readonly sample_interval_ms: number;
  /** Retry-After on a shed request. */
  readonly retry_after_s: number;
}

export interface LogConfig {
  readonly level: string;
  readonly access: boolean;
}

export interface SluiceConfig {
  readonly server: ServerConfig;
  readonly admin: AdminConfig;
  readonly store: StoreConfig;
  readonly auth: AuthConfig;
  readonly plans: ReadonlyMap<string, PlanConfig>;
  readonly customers: ReadonlyMap<string, CustomerConfig>;
  readonly routes: readonly RouteConfig[];
  readonly limit_req_zones: ReadonlyMap<string, LimitReqZoneConfig>;
  readonly limit_conn_zones: ReadonlyMap<string, LimitConnZoneConfig>;
  readonly upstreams: ReadonlyMap<string, UpstreamConfig>;
  readonly spawn_backends: readonly SpawnBackendConfig[];
  readonly shed: ShedConfig;
  readonly log: LogConfig;
}
