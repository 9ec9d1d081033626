import type { RouteDoc } from '../config/schema/routes.js';
import type { LimitReqRule, RouteConfig, SluiceConfig, VirtualHostConfig } from '../config/types.js';

// A nested route inherits every field it does not set from the route it is nested in
// (Sluice's rule; nginx inherits most directives but not proxy_pass): its match
// conditions (methods, headers), its action (upstream or return, as a pair: setting one
// drops the other), access rules, rewrite, Host policy, header edits, timeouts, auth and
// limits. What it matches (exact, prefix, prefix_priority, regex, case_insensitive) and
// its name are its own. A list (limit_req, access, ...) is inherited whole or replaced
// whole, as nginx does with a directive repeated at a level.

/** What the top level gets where it does not say. */
const DEFAULTS = { public: false, limit_req: [], limit_req_status: 503, limit_conn: [], limit_conn_status: 503 } as const;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** The routes of one list, resolved against the route they are nested in (none at the top). */
export function resolveRoutes(docs: readonly RouteDoc[], at: string, parent?: RouteConfig): RouteConfig[] {
  return docs.map((doc, i) => resolveRoute(doc, `${at}[${i}]`, parent));
}

function resolveRoute(doc: RouteDoc, at: string, parent: RouteConfig | undefined): RouteConfig {
  const { routes, limit_req: ownLimitReq, ...own } = doc;
  const r = { ...own } as unknown as Mutable<RouteConfig>;
  const ownAction = doc.upstream !== undefined || doc.return !== undefined;
  if (parent !== undefined) {
    const inherit = <K extends keyof RouteConfig>(k: K): void => {
      if (r[k] === undefined && parent[k] !== undefined) r[k] = parent[k];
    };
    if (!ownAction) {
      inherit('upstream');
      inherit('return');
    }
    for (const k of ['methods', 'headers', 'access', 'host', 'request_headers', 'response_headers', 'timeouts', 'plans', 'max_body_bytes',
      'public', 'limit_req_status', 'limit_conn', 'limit_conn_status', 'upgrade'] as const) inherit(k);
  }
  r.limit_req = ownLimitReq === undefined ? parent?.limit_req ?? DEFAULTS.limit_req : ownLimitReq.map(limitReqRule);
  if (doc.rewrite !== undefined) r.rewrite_base = doc.prefix ?? doc.exact;
  else if (parent?.rewrite !== undefined && doc.return === undefined) {
    r.rewrite = parent.rewrite;
    r.rewrite_base = parent.rewrite_base;
  }
  for (const k of ['public', 'limit_req_status', 'limit_conn', 'limit_conn_status'] as const) {
    if (r[k] === undefined) (r as Record<string, unknown>)[k] = DEFAULTS[k];
  }
  r.name = doc.name ?? defaultName(doc);
  r.at = at;
  r.routes = resolveRoutes(routes ?? [], `${at}.routes`, r);
  return r;
}

/** A route's name when it has none: what it matches, as nginx's location line says it. */
export function defaultName(doc: RouteDoc): string {
  if (doc.exact !== undefined) return `= ${doc.exact}`;
  if (doc.prefix !== undefined) return doc.prefix_priority === true ? `^~ ${doc.prefix}` : doc.prefix;
  return `${doc.case_insensitive === true ? '~*' : '~'} ${doc.regex ?? ''}`;
}

function limitReqRule(l: NonNullable<RouteDoc['limit_req']>[number]): LimitReqRule {
  return { ...l, delay: l.nodelay ? l.burst : l.delay ?? 0 };
}

/** The top-level routes become the last, catch-all virtual host beside the configured ones. */
export function virtualHosts(vhosts: readonly Omit<VirtualHostConfig, 'catch_all'>[], top: readonly RouteConfig[]): VirtualHostConfig[] {
  const out: VirtualHostConfig[] = vhosts.map((v) => ({ ...v, catch_all: false }));
  if (top.length > 0) out.push({ name: '(routes)', server_names: [], default_for: [], routes: top, catch_all: true });
  return out;
}

/** Every route a request can be given, nested ones included, in file order. */
export function everyRoute(cfg: Pick<SluiceConfig, 'virtual_hosts'>): RouteConfig[] {
  const out: RouteConfig[] = [];
  const walk = (routes: readonly RouteConfig[]): void => {
    for (const r of routes) {
      out.push(r);
      walk(r.routes);
    }
  };
  for (const v of cfg.virtual_hosts) walk(v.routes);
  return out;
}
