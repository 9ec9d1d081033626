import type { Static } from '@sinclair/typebox';
import type { Auth, Jwt, JwtKey, StaticKey } from './schema/auth.js';
import type { Billing, CostOverrides, Costs } from './schema/credits.js';
import type { LimitOverrides, Plan } from './schema/limits.js';
import type { LimitConnZone, LimitReqZone, Route } from './schema/routes.js';
import type { Admin, Log, Server, Shed, SpawnBackend } from './schema/server.js';
import type { Circuit, Discover, Health, Outlier, Retry, Target, Upstream } from './schema/upstreams.js';
import type { Frozen } from '../../common/config-text.js';
import type { StoreConfig } from '../../common/store-config.js';

// The validated, frozen shape the rest of the gateway trusts: the schema's types
// (schema/*.ts, with every default filled in), plus what the loader works out from
// them (names from map keys, defaults that depend on another field, parsed zone keys).
// Field names follow the YAML (snake_case) so an operator can grep a setting from
// config to code.

export type { BreakerConfig, FailurePolicy, LeaseConfig, StoreConfig, StoreMode, StoreTlsConfig } from '../../common/store-config.js';
export type { LimitOverrides } from './schema/limits.js';

export type ServerConfig = Frozen<Static<typeof Server>>;
export type AdminConfig = Frozen<Static<typeof Admin>>;
export type ShedConfig = Frozen<Static<typeof Shed>>;
export type LogConfig = Frozen<Static<typeof Log>>;
export type SpawnBackendConfig = Frozen<Static<typeof SpawnBackend>>;

export type PlanConfig = Frozen<Omit<Static<typeof Plan>, 'burst'> & {
  name: string;
  /** Default: rate. */
  burst: number;
}>;
export type LimitScope = PlanConfig['scope'];

export type CustomerConfig = {
  readonly id: string;
  readonly plan: string | undefined;
  readonly overrides: Frozen<LimitOverrides>;
  readonly webhook_url: string | undefined;
};
export type CostsConfig = Frozen<Static<typeof Costs>>;
export type CostOverridesConfig = Frozen<Static<typeof CostOverrides>>;
export type BillingConfig = Frozen<Static<typeof Billing>>;

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

/** One `limit_req zone=NAME [burst=N] [nodelay | delay=N]`; nodelay is stored as delay = burst. */
export type LimitReqRule = Frozen<Required<Static<typeof Route>['limit_req'][number]>>;
export type LimitConnRule = Frozen<Static<typeof Route>['limit_conn'][number]>;

export type RouteConfig = Frozen<Omit<Static<typeof Route>, 'name' | 'limit_req'>> & {
  readonly name: string;
  readonly limit_req: readonly LimitReqRule[];
};

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
  readonly billing: BillingConfig;
  readonly log: LogConfig;
}
