// The imported config → Sluice YAML, with comments pointing listeners, upstreams, zones
// and routes back at the nginx lines they came from.

import { Document, isMap, isSeq, type YAMLMap } from 'yaml';
import type { Imported } from './build.js';

export function toSluiceYaml(imp: Imported, source: string): string {
  const doc = new Document(imp.config, { aliasDuplicateObjects: false });
  const c = imp.report.counts;
  doc.commentBefore = [
    ` Imported from ${source} by \`sluice import-nginx\`.`,
    ' Every route is public (no API key, no plan limits): nginx did no authentication, so',
    ' the imported gateway admits what nginx admitted, limited only by the limit_req /',
    ' limit_conn zones below. To put a route behind Sluice keys, set public: false and add',
    ' keys and plans. The plan below is a placeholder: Sluice requires one.',
    ` ${c.translated} directives translated; ${c.emulated} locations answer 501 not_migrated; ${c.listed} directives listed; ${c.not_enforced} Lua handlers NOT ENFORCED (see the import report).`,
    ` Upstreams behave as nginx's did (upstream policy: ${imp.report.upstream_policy}).`,
  ].join('\n');
  const root = doc.contents as YAMLMap;
  const plans = root.get('plans', true) as { commentBefore?: string } | undefined;
  if (plans !== undefined) plans.commentBefore = ' placeholder: every imported route is public, so no plan applies to it';
  const sec = root.get('upstreams', true);
  if (isMap(sec)) {
    for (const pair of sec.items) {
      const at = imp.origins.upstreams.get(String((pair.key as { value?: unknown }).value));
      if (at !== undefined) (pair.key as { commentBefore?: string }).commentBefore = ` from ${at}`;
    }
  }
  const listeners = root.get('listeners', true);
  if (isSeq(listeners)) {
    for (const node of listeners.items) {
      const name = (node as YAMLMap).get('name');
      const at = imp.origins.listeners.get(String(name));
      if (at !== undefined) (node as { commentBefore?: string }).commentBefore = ` listen at ${at}`;
    }
  }
  const vhosts = root.get('virtual_hosts', true);
  const atOf = new Map(imp.report.servers.flatMap((s) => [[s.name, `server at ${s.at}`] as const, ...s.locations.filter((l) => l.route !== undefined).map((l) => [l.route!, `${l.location} at ${l.at}${l.outcome === 'emulated' ? ' (NOT MIGRATED: answers 501)' : ''}`] as const)]));
  const comment = (node: unknown): void => {
    if (!isMap(node)) return;
    const at = atOf.get(String(node.get('name')));
    if (at !== undefined) (node as { commentBefore?: string }).commentBefore = ` ${at}`;
    const nested = node.get('routes', true);
    if (isSeq(nested)) for (const r of nested.items) comment(r);
  };
  if (isSeq(vhosts)) for (const v of vhosts.items) comment(v);
  return doc.toString({ lineWidth: 0 });
}
