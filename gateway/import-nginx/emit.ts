// Imported model → Sluice YAML (the schema in README.md and gateway/limit-req/CONFIG.md),
// with comments pointing every route, upstream and zone back at the nginx line it came from.

import { Document, isMap, isSeq, type YAMLMap } from 'yaml';
import type { Imported, ZoneKey } from './convert.js';

export const PLACEHOLDER_PLAN = 'imported';

function key(k: ZoneKey): string {
  return k.kind === 'client' ? 'client' : `header:${k.header}`;
}

/** The config as a plain object, in the field order an operator reads it. */
export function toSluiceObject(imp: Imported): Record<string, unknown> {
  const out: Record<string, unknown> = {
    server: { host: imp.server.host, port: imp.server.port },
    store: { kind: 'memory' },
    plans: { [PLACEHOLDER_PLAN]: { rate: 0 } },
    upstreams: Object.fromEntries(imp.upstreams.map((u) => [u.name, {
      // A server with no parameter stays the plain origin string it always was.
      targets: u.targets.map((t) => (Object.keys(t).length === 1 ? t.url : { ...t })),
      ...(u.balancer === undefined ? {} : { balancer: u.balancer }),
      ...(u.maxEjectionPercent === undefined ? {} : { outlier: { max_ejection_percent: u.maxEjectionPercent } }),
      ...(u.connections === undefined ? {} : { connections: u.connections }),
    }])),
  };
  if (imp.reqZones.length > 0) {
    out.limit_req_zones = Object.fromEntries(imp.reqZones.map((z) => [z.name, {
      kind: 'nginx_limit_req', key: key(z.key), rate: `${z.rate}r/${z.per}`, ...(z.size === undefined ? {} : { size: z.size }),
    }]));
  }
  if (imp.connZones.length > 0) {
    out.limit_conn_zones = Object.fromEntries(imp.connZones.map((z) => [z.name, {
      key: key(z.key), ...(z.size === undefined ? {} : { size: z.size }),
    }]));
  }
  out.routes = imp.routes.map((r) => {
    const route: Record<string, unknown> = { name: r.name, prefix: r.prefix, upstream: r.upstream, public: true };
    if (r.limit_req.length > 0) {
      route.limit_req = r.limit_req.map((l) => ({
        zone: l.zone,
        ...(l.burst === 0 ? {} : { burst: l.burst }),
        ...(l.nodelay ? { nodelay: true } : l.delay > 0 ? { delay: l.delay } : {}),
      }));
    }
    if (r.limit_req_status !== undefined) route.limit_req_status = r.limit_req_status;
    if (r.limit_conn.length > 0) route.limit_conn = r.limit_conn.map((l) => ({ zone: l.zone, max: l.max }));
    if (r.limit_conn_status !== undefined) route.limit_conn_status = r.limit_conn_status;
    return route;
  });
  return out;
}

export function toSluiceYaml(imp: Imported, source: string, rel: (at: string) => string = (at) => at): string {
  const doc = new Document(toSluiceObject(imp));
  doc.commentBefore = [
    ` Imported from ${source} by \`sluice import-nginx\`.`,
    ' Every route is public (no API key, no plan limits): nginx did no authentication, so',
    ' the imported gateway admits what nginx admitted, limited only by the limit_req /',
    ' limit_conn zones below. To put a route behind Sluice keys, set public: false and add',
    ' keys and plans. The plan below is a placeholder: Sluice requires one.',
    ` ${imp.translated} directives translated, ${imp.untranslated.length} not (see the import report).`,
  ].join('\n');
  const commentOn = (path: (string | number)[], text: string): void => {
    const node = doc.getIn(path, true) as { commentBefore?: string | null } | undefined;
    if (node !== undefined && node !== null) node.commentBefore = ` ${text}`;
  };
  const root = doc.contents as YAMLMap;
  const pairComment = (section: string, name: string, text: string): void => {
    const sec = root.get(section, true);
    if (!isMap(sec)) return;
    const pair = sec.items.find((p) => (p.key as { value?: unknown }).value === name);
    if (pair !== undefined) (pair.key as { commentBefore?: string }).commentBefore = ` ${text}`;
  };
  if (imp.server.at !== undefined) commentOn(['server'], `listen at ${rel(imp.server.at)}`);
  commentOn(['plans'], 'placeholder: every imported route is public, so no plan applies to it');
  for (const u of imp.upstreams) pairComment('upstreams', u.name, `from ${rel(u.at)}`);
  for (const z of imp.reqZones) pairComment('limit_req_zones', z.name, `from ${rel(z.at)}`);
  for (const z of imp.connZones) pairComment('limit_conn_zones', z.name, `from ${rel(z.at)}`);
  const routes = root.get('routes', true);
  if (isSeq(routes)) {
    imp.routes.forEach((r, i) => {
      const node = routes.items[i] as { commentBefore?: string } | undefined;
      if (node !== undefined) node.commentBefore = ` location at ${rel(r.at)}`;
    });
  }
  return doc.toString({ lineWidth: 0 });
}
