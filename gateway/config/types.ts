import type { Static } from '@sinclair/typebox';
import type { Auth, Jwt, JwtKey, StaticKey } from './schema/auth.js';
import type { LimitOverrides, Plan } from './schema/limits.js';
import type { LimitConnZone, LimitReqZone, RealIp, RouteFields, VirtualHost } from './schema/routes.js';
import type { Admin, Log, Server, Shed, SpawnBackend } from './schema/server.js';
import type { Webhooks } from './schema/webhooks.js';
import type { Circuit, Discover, Health, Outlier, Retry, Target, Upstream } from './schema/upstreams.js';
import type { Frozen } from '../../common/config-text.js';
import type { StoreConfig } from '../../common/store-config.js';
import type { ListenerConfig } from '../listen/listener-config.js';

// The validated, frozen shape the rest of the gateway trusts: the schema's types
// (schema/*.ts, with every default filled in), plus what the loader works out from
// them (names from map keys, defaults that depend on another field, parsed zone keys).
// Field names follow the YAML (snake_case) so an operator can grep a setting from
// config to code.

export type { BreakerConfig, FailurePolicy, LeaseConfig, StoreConfig, StoreMode, StoreTlsConfig } from '../../common/store-config.js';
export type { LimitOverrides } from './schema/limits.js';
export type { CertificateConfig, ListenerConfig, TlsConfig } from '../listen/listener-config.js';

export type ServerConfig = Frozen<Static<typeof Server>>;
export type AdminConfig = Frozen<Static<typeof Admin>>;
export type ShedConfig = Frozen<Static<typeof Shed>>;
export type LogConfig = Frozen<Static<typeof Log>>;
export type WebhooksConfig = Frozen<Static<typeof Webhooks>>;
export type SpawnBackendConfig = Frozen<Static<typeof SpawnBackend>>;

export type PlanConfig = Frozen<Omit<Static<typeof Plan>, 'burst'> & {
  name: string;
  /** Default: rate. */
  burst: number;
}>;
export type LimitScope = PlanConfig['scope'];

export type CustomerConfig = { readonly id: string; readonly plan: string | undefined; readonly overrides: Frozen<LimitOverrides> };

/** `digest` without its optional `sha256:` prefix. */
export type StaticKeyConfig = Frozen<Static<typeof StaticKey>>;
export type JwtKeyConfig = Frozen<Static<typeof JwtKey>>;
export type JwtConfig = Frozen<Static<typeof Jwt>>;
export type AuthConfig = Frozen<Static<typeof Auth>>;

export type TargetConfig = Frozen<Static<typeof Target>>;
export type BalancerKind = Static<typeof Upstream>['balancer'];
export type HealthCheckConfig = Frozen<Required<Static<typeof Health>>>;
export type OutlierConfig = Frozen<Required<Static<typeof Outlier>>>;
export type RetryConfig = Frozen<Static<typeof Retry>>;
export type CircuitConfig = Frozen<Required<Static<typeof Circuit>>>;
export type DiscoverConfig = Frozen<Required<Static<typeof Discover>>>;

export type UpstreamConfig = Frozen<Omit<Static<typeof Upstream>, 'health' | 'outlier' | 'circuit' | 'discover'>> & {
  readonly name: string;
  readonly health: HealthCheckConfig | undefined;
  readonly outlier: OutlierConfig;
  readonly circuit: CircuitConfig;
  readonly discover?: DiscoverConfig;
};

type RouteFieldsDoc = Static<typeof RouteFields>;

/** One `limit_req zone=NAME [burst=N] [nodelay | delay=N]`; nodelay is stored as delay = burst. */
export type LimitReqRule = Frozen<Required<NonNullable<RouteFieldsDoc['limit_req']>[number]>>;
export type LimitConnRule = Frozen<NonNullable<RouteFieldsDoc['limit_conn']>[number]>;

/** The fields a nested route takes from its parent when it does not set them, and their defaults at the top. */
type Inherited = 'public' | 'limit_req' | 'limit_req_status' | 'limit_conn' | 'limit_conn_status';

/**
 * A route as the gateway uses it: what it inherited from the routes it is nested in is
 * filled in (gateway/route/resolve.ts), then the defaults. A route has either `upstream`
 * or `return`, its own or inherited.
 */
export type RouteConfig = Frozen<Omit<RouteFieldsDoc, 'name' | Inherited>> & {
  readonly name: string;
  readonly public: boolean;
  readonly limit_req: readonly LimitReqRule[];
  readonly limit_req_status: number;
  readonly limit_conn: readonly LimitConnRule[];
  readonly limit_conn_status: number;
  /** Where the file writes it (`virtual_hosts[0].routes[2].routes[1]`), for messages. */
  readonly at: string;
  /** The prefix (or exact path) a `replace_prefix` or `strip_prefix` rewrite applies to: of the route that wrote the rewrite. */
  readonly rewrite_base: string | undefined;
  readonly routes: readonly RouteConfig[];
};

/** An nginx server block: its names, where it listens, and its routes. */
export type VirtualHostConfig = Frozen<Omit<Static<typeof VirtualHost>, 'routes'>> & {
  readonly routes: readonly RouteConfig[];
  /** The top-level `routes` list, made a virtual host: the default wherever no virtual host claims default_for. */
  readonly catch_all: boolean;
};

export type RealIpConfig = Frozen<Static<typeof RealIp>>;

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
export type LimitReqZoneConfig = Frozen<Omit<Static<typeof LimitReqZone>, 'kind' | 'key'>> & {
  readonly name: string;
  readonly key: ZoneKey;
  /** nginx's internal unit: milli-requests per second, `N*1000` for r/s, `floor(N*1000/60)` for r/m. */
  readonly rate_milli: number;
};

/** `limit_conn_zone KEY zone=NAME:SIZE`. */
export type LimitConnZoneConfig = Frozen<Omit<Static<typeof LimitConnZone>, 'key'>> & { readonly name: string; readonly key: ZoneKey };

export interface SluiceConfig {
  readonly server: ServerConfig;
  /** Always at least one: without `listeners` in the file, "default" on server.host:server.port. */
  readonly listeners: readonly ListenerConfig[];
  readonly admin: AdminConfig;
  readonly store: StoreConfig;
  readonly auth: AuthConfig;
  readonly plans: ReadonlyMap<string, PlanConfig>;
  readonly customers: ReadonlyMap<string, CustomerConfig>;
  /** The top-level routes (the catch-all virtual host's); every route the gateway can choose: everyRoute(). */
  readonly routes: readonly RouteConfig[];
  /** The virtual hosts in file order, the top-level routes last (when there are any) as the catch-all one. */
  readonly virtual_hosts: readonly VirtualHostConfig[];
  readonly limit_req_zones: ReadonlyMap<string, LimitReqZoneConfig>;
  readonly limit_conn_zones: ReadonlyMap<string, LimitConnZoneConfig>;
  readonly upstreams: ReadonlyMap<string, UpstreamConfig>;
  readonly spawn_backends: readonly SpawnBackendConfig[];
  readonly shed: ShedConfig;
  readonly webhooks: WebhooksConfig;
  readonly log: LogConfig;
}
