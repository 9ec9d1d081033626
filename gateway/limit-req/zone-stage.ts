import type { FailurePolicy, RouteConfig, SluiceConfig, ZoneKey } from '../config/types.js';
import { sendError } from '../http/errors.js';
import type { Metrics } from '../observe/metrics.js';
import type { RequestContext, Stage } from '../pipeline/context.js';
import { MemoryStore } from '../store/memory-store.js';
import type { Store } from '../store/types.js';
import type { GuardedOp, Guarded, StoreGuard } from '../guard/store-guard.js';

// What nginx's limit_req and limit_conn stages share: where on the request path they
// run, how a zone's key is read from a request, and how a store call that fails follows
// the failure policy.

/** The store side of the nginx zone limiters, built once per gateway and shared by both. */
export interface ZoneLimiterDeps {
  readonly store: Store;
  /** The store itself when it is the memory store: decided without a promise. */
  readonly memory: MemoryStore | undefined;
  /**
   * Used only when the guard hands a decision to the fallback and the policy is open: the
   * same decisions on this gateway's own state, with its share of each zone.
   */
  readonly local: MemoryStore;
  readonly guard: StoreGuard;
  readonly failure: FailurePolicy;
  readonly metrics: Metrics;
  readonly log: { warn(obj: object, msg: string): void };
}

export function zoneLimiterDeps(cfg: SluiceConfig, store: Store, guard: StoreGuard, metrics: Metrics, log: ZoneLimiterDeps['log']): ZoneLimiterDeps {
  return {
    store, memory: store instanceof MemoryStore ? store : undefined, local: new MemoryStore(),
    guard, failure: cfg.store.failure_policy, metrics, log,
  };
}

/** One zone of a route: where its key comes from and the rest of its check. */
export interface ZoneRule<C> {
  readonly key: ZoneKey;
  readonly check: Omit<C, 'key'>;
}

/**
 * The checks that apply to this request: nginx skips a zone whose key is empty, and one
 * whose key is longer than the zone can store (with an error in its log) rather than limit it.
 */
export function zoneChecks<C extends { readonly key: string }>(ctx: RequestContext, rules: readonly ZoneRule<C>[], maxKeyBytes: number): C[] {
  const checks: C[] = [];
  for (const z of rules) {
    const value = keyValue(ctx, z.key);
    if (value === '' || (value.length > maxKeyBytes / 3 && Buffer.byteLength(value) > maxKeyBytes)) continue;
    checks.push({ ...z.check, key: value } as C);
  }
  return checks;
}

function keyValue(ctx: RequestContext, key: ZoneKey): string {
  switch (key.source) {
    // nginx's $remote_addr: after server.real_ip, v4 shown as v4 even on a dual-stack socket.
    case 'client': return ctx.clientAddress;
    // nginx 1.22's $http_<name> is the first of repeated headers, not a joined list.
    case 'header': return ctx.req.headersDistinct[key.header]?.[0] ?? '';
    case 'customer': return ctx.identity?.customer ?? '';
  }
}

/**
 * Asks the store through the guard, then `settle`s with its answer and the store that
 * gave it (a lease must go back to the store that granted it). When the guard gives up
 * on the store, a closed policy answers 503 and an open one asks this gateway's local
 * store with its share of the fleet (`fleet` gateways).
 */
export function decideWithStore<R>(
  ctx: RequestContext, deps: ZoneLimiterDeps, op: GuardedOp,
  ask: (s: Store) => Promise<R>, askLocal: (m: MemoryStore, fleet: number) => R,
  settle: (r: R, from: Store) => boolean | Promise<boolean>, abandon?: () => void,
): boolean | Promise<boolean> {
  if (deps.memory !== undefined) return settle(askLocal(deps.memory, 1), deps.memory);
  const decided = (g: Guarded<R>): boolean | Promise<boolean> => {
    if (g.source === 'store') return settle(g.value, deps.store);
    if (g.source === 'closed') {
      ctx.limitResult = 'store_closed';
      deps.metrics.limitDecision('store_closed');
      return sendError(ctx, 503, 'unavailable', 'rate-limit store unavailable', ['retry-after', '1']);
    }
    deps.metrics.limitDecision('fallback_open');
    return settle(g.value, deps.local);
  };
  const g = deps.guard.run(op, deps.failure, () => ask(deps.store), (fleet) => askLocal(deps.local, fleet), abandon);
  return g instanceof Promise ? g.then(decided) : decided(g);
}

/**
 * Where the nginx limiters run. nginx runs limit_req and limit_conn in the preaccess
 * phase, before access (auth), so requests count whether or not their credential is
 * good; `preAuth` does the same for routes keyed by the client address or a header. A
 * zone keyed by the customer cannot be decided before auth has said who the customer
 * is, and nginx decides a route's limit_req zones together and its limit_conn after
 * them, so a route with any customer-keyed zone (of either kind) has all of them
 * decided by `postAuth`, right after auth and before the plan limits.
 */
export interface PhaseStages {
  readonly preAuth: Stage;
  readonly postAuth: Stage;
}

export function routeAfterAuth(route: RouteConfig, cfg: SluiceConfig): boolean {
  return route.limit_req.some((r) => cfg.limit_req_zones.get(r.zone)!.key.source === 'customer')
    || route.limit_conn.some((r) => cfg.limit_conn_zones.get(r.zone)!.key.source === 'customer');
}

export function phaseStages<P>(cfg: SluiceConfig, plans: ReadonlyMap<RouteConfig, P>, decide: (ctx: RequestContext, plan: P) => boolean | Promise<boolean>): PhaseStages {
  const afterAuth = new Map([...plans.keys()].map((r) => [r, routeAfterAuth(r, cfg)]));
  const stage = (late: boolean): Stage => (ctx) => {
    const plan = plans.get(ctx.route!);
    if (plan === undefined || afterAuth.get(ctx.route!) !== late) return true;
    return decide(ctx, plan);
  };
  return { preAuth: stage(false), postAuth: stage(true) };
}
