import { Type, type Static } from '@sinclair/typebox';
import { expandShorthands, isMapping, parseYamlWithEnv, type Frozen } from './config-text.js';
import { ConfigError } from './errors.js';
import { schemaChecker } from './schema-check.js';
import { Section, StringEnum } from './schema-types.js';

// The `store` section of a gateway config: how a gateway reaches the Redis it shares with
// the others, and what it does when that Redis does not answer. Backends read it too
// (to register themselves, to queue webhooks), from the same file, checked the same way.

export const FailurePolicySchema = StringEnum(['open', 'closed'] as const, {
  description: 'What a request gets when the store cannot decide: open lets it through, closed refuses it (503).',
});
export type FailurePolicy = Static<typeof FailurePolicySchema>;

const MODES = ['standalone', 'sentinel', 'cluster'] as const;
const REDIS_URL = { pattern: '^rediss?://', patternErrorMessage: 'must start with redis:// or rediss://' };

const Breaker = Section({
  consecutive_failures: Type.Integer({ minimum: 1, default: 5, description: 'Store calls failing in a row that open the breaker.' }),
  failure_percent: Type.Number({ minimum: 1, maximum: 100, default: 50, description: 'Share of failing calls in window_ms that opens the breaker.' }),
  min_calls: Type.Integer({ minimum: 1, default: 20, description: 'Calls in the window before failure_percent counts.' }),
  window_ms: Type.Integer({ minimum: 100, default: 10000, description: 'The rolling window failure_percent and min_calls count over.' }),
}, { default: {}, description: 'When the store breaker opens (gateway/guard/breaker.ts).' });

const Lease = Section({
  enabled: Type.Boolean({ default: true, description: 'Take a busy subject\'s tokens in batches (Redis store only; the memory store never leases).' }),
  target_ms: Type.Integer({ minimum: 10, maximum: 10_000, default: 75, description: "How much of a subject's traffic at this gateway one batch should cover, ms." }),
  max_share: Type.Number({ minimum: 0.001, maximum: 1, default: 0.1, description: 'The largest batch, as a share of the burst (and of each quota).' }),
}, { default: {}, description: 'Token leases: batches of tokens taken from the shared bucket (gateway/limits/token-leases.ts).' });

const Tls = Section({
  ca: Type.Optional(Type.String({ minLength: 1, description: "PEM file of the CA that signed the servers' certificates (default: the system's CAs)." })),
  servername: Type.Optional(Type.String({ minLength: 1, description: 'The name the servers\' certificates must carry (default: the host connected to).' })),
  cert: Type.Optional(Type.String({ minLength: 1, description: 'PEM file for client-certificate authentication (with key).' })),
  key: Type.Optional(Type.String({ minLength: 1, description: 'PEM file of the client certificate\'s private key (with cert).' })),
  reject_unauthorized: Type.Boolean({ default: true, description: 'Refuse servers whose certificate does not verify; false only for a test setup.' }),
}, { shorthand: true, description: 'Present (or true) means TLS to every data node and to the sentinels.' });

export const StoreSchema = Section({
  kind: StringEnum(['memory', 'redis'] as const, { default: 'memory', description: 'memory: this process only; redis: shared by every gateway.' }),
  mode: StringEnum(MODES, { default: 'standalone', description: 'standalone (url), sentinel (sentinels, sentinel_name) or cluster (nodes).' }),
  url: Type.Optional(Type.String({ ...REDIS_URL, description: 'Standalone mode: redis://[:password@]host:port[/db].' })),
  sentinels: Type.Array(Type.String({ pattern: '^(.+):(\\d{1,5})$', patternErrorMessage: 'must be host:port' }), {
    default: [], description: 'Sentinel mode: host:port of each sentinel ([::1]:26379 for IPv6).' }),
  sentinel_name: Type.Optional(Type.String({ minLength: 1, description: "Sentinel mode: the monitored master's name." })),
  nodes: Type.Array(Type.String(REDIS_URL), { default: [], description: 'Cluster mode: seed nodes; the rest of the topology is discovered.' }),
  password: Type.Optional(Type.String({ description: "Wins over a password in the url; in sentinel mode it is the data nodes' password." })),
  tls: Type.Optional(Tls),
  timeout_ms: Type.Integer({ minimum: 1, default: 50, description: 'A store decision slower than this follows the failure policy (plus at most one event-loop turn, or late_grace_ms while this loop is late and the store answers).' }),
  late_grace_ms: Type.Integer({ minimum: 0, maximum: 10_000, default: 50, description:
    'When this gateway\'s own deadline timer ran late (its event loop was behind, not the store), a store call may take this much longer before the failure policy decides. '
    + 'Every limit call carries its expiry (timeout_ms + late_grace_ms) on Redis\'s clock; a call arriving later takes nothing (admit.lua).' }),
  failure_policy: { ...FailurePolicySchema, default: 'open' },
  prefix: Type.String({ default: 'sluice:', description: 'Prefix of every Redis key.' }),
  probe_interval_ms: Type.Integer({ minimum: 10, default: 200, description: 'How long the open breaker waits between probes.' }),
  breaker: Breaker,
  fleet_floor: Type.Integer({ minimum: 1, default: 8, description: 'Gateway processes a fail-open share assumes until this one has counted the fleet.' }),
  lease: Lease,
}, { default: {}, description: 'Where limits are kept: this process\'s memory, or a Redis shared by every gateway.' });

type StoreSection = Static<typeof StoreSchema>;
export type StoreMode = StoreSection['mode'];
export type BreakerConfig = Frozen<Static<typeof Breaker>>;
export type LeaseConfig = Frozen<Static<typeof Lease>>;
export type StoreTlsConfig = Frozen<Static<typeof Tls>>;
export type StoreConfig = Frozen<Omit<StoreSection, 'sentinels'> & { sentinels: { host: string; port: number }[] }>;

/**
 * What the schema cannot say about a store section (checked, and filled with defaults,
 * but maybe with problems of its own, already reported): each mode names its servers
 * its own way, and a field of another mode would be silently ignored, so it is refused.
 */
export function storeProblems(s: StoreSection, p = 'store'): string[] {
  const out: string[] = [];
  const sentinels = Array.isArray(s.sentinels) ? s.sentinels : [];
  const nodes = Array.isArray(s.nodes) ? s.nodes : [];
  sentinels.forEach((hp, i) => {
    if (Number(/:(\d+)$/.exec(String(hp))?.[1]) > 65535) out.push(`${p}.sentinels[${i}]: must be host:port, got ${JSON.stringify(hp)}`);
  });
  if (isMapping(s.tls) && (s.tls.cert === undefined) !== (s.tls.key === undefined)) {
    out.push(`${p}.tls: cert and key go together (client-certificate authentication needs both)`);
  }
  // An unknown mode is reported already; which servers it should name cannot be said.
  if (s.kind !== 'redis' || !MODES.includes(s.mode)) return out;
  const only = (field: string, owner: StoreMode, present: boolean): void => {
    if (present && s.mode !== owner) out.push(`${p}.${field}: is for mode ${owner}, not ${s.mode}`);
  };
  only('url', 'standalone', s.url !== undefined);
  only('sentinels', 'sentinel', sentinels.length > 0);
  only('sentinel_name', 'sentinel', s.sentinel_name !== undefined);
  only('nodes', 'cluster', nodes.length > 0);
  if (s.mode === 'standalone' && s.url === undefined) out.push(`${p}.url: is required when kind is redis`);
  if (s.mode === 'sentinel') {
    if (sentinels.length === 0) out.push(`${p}.sentinels: is required when mode is sentinel (a list of host:port)`);
    if (s.sentinel_name === undefined) out.push(`${p}.sentinel_name: is required when mode is sentinel`);
  }
  if (s.mode === 'cluster' && nodes.length === 0) out.push(`${p}.nodes: is required when mode is cluster (a list of redis:// urls)`);
  return out;
}

/** The checked section as the store code takes it. */
export function toStoreConfig(s: StoreSection): StoreConfig {
  return {
    ...s,
    sentinels: s.sentinels.map((hp) => {
      const m = /^(.+):(\d+)$/.exec(hp)!;
      return { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port: Number(m[2]) };
    }),
  };
}

const StoreOnly = Type.Object({ store: StoreSchema });
const checkStoreOnly = schemaChecker(StoreOnly);

/** `{store: ...}` checked as the gateway checks its store section; the rest of `root` is not looked at. */
function storeOf(root: Record<string, unknown>, earlier: readonly string[], extra: (s: StoreSection) => string[] = () => []): StoreConfig {
  const doc = { store: expandShorthands(StoreSchema, root.store) };
  const s = doc.store as StoreSection;
  const errors = [...earlier, ...checkStoreOnly(doc).errors, ...storeProblems(s), ...extra(s)];
  if (errors.length > 0) throw new ConfigError(errors);
  return Object.freeze(toStoreConfig(s));
}

/**
 * Only the `store` section of a gateway config file: how a backend finds the Redis the
 * gateways share, in whatever mode, with the same password and TLS settings.
 */
export function parseStoreSection(text: string, env: NodeJS.ProcessEnv = process.env): StoreConfig {
  const envErrors: string[] = [];
  const root = parseYamlWithEnv(text, env, envErrors);
  if (!isMapping(root)) throw new ConfigError([...envErrors, '(root): must be a mapping']);
  return storeOf(root, envErrors, (s) => (s.kind === 'redis' ? [] : ['store.kind: must be redis: backends register in the Redis the gateways share']));
}

/** A store section from fields given in code (a command-line URL, a test), with every other field at its default. */
export function storeConfigOf(fields: Readonly<Record<string, unknown>>): StoreConfig {
  return storeOf({ store: { ...fields } }, []);
}
