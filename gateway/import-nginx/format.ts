// The import report for humans: counts first, then what is NOT ENFORCED (impossible to
// miss), then each server with its locations and what became of each.

import type { ImportReport, PlacedItem } from './report.js';

const line = (i: PlacedItem): string => `${i.file}:${i.line}: ${i.directive} — ${i.reason}`;
const MARK: Record<PlacedItem['kind'], string> = { listed: 'listed', emulated: 'NOT MIGRATED', not_enforced: 'NOT ENFORCED', note: 'note' };

export function formatReport(r: ImportReport): string {
  const c = r.counts;
  const out: string[] = [];
  const untranslated = r.untranslated.length;
  out.push(`import-nginx ${r.source}: ${r.translated} directives translated, ${untranslated} untranslated, ${r.notes.length} notes`);
  out.push(`  routes answering 501 not_migrated (emulated): ${c.emulated}; directives listed: ${c.listed}; Lua handlers NOT ENFORCED: ${c.not_enforced}${c.verified === null ? '' : `; requests verified against nginx: ${c.verified}`}`);
  out.push(`  upstreams: ${r.upstream_policy === 'nginx'
    ? "nginx's defaults (max_fails=1 fail_timeout=10s, proxy_next_upstream error timeout; no retry or ejection on 5xx); --upstream-policy sluice opts into Sluice's retries and outlier ejection"
    : "Sluice's retries (502/503 and connection failures) and outlier ejection (5xx counted), as chosen with --upstream-policy sluice"}`);
  if (r.not_enforced.length > 0) {
    out.push('');
    out.push('!!! NOT ENFORCED: these Lua handlers are not translated. Sluice does NOT do what they did !!!');
    for (const i of r.not_enforced) out.push(`  ${i.file}:${i.line}: ${i.directive} — ${i.reason}`);
  }
  if (r.global.length > 0) {
    out.push('');
    out.push('outside any server:');
    for (const i of r.global) out.push(`  [${MARK[i.kind]}] ${line(i)}`);
  }
  for (const s of r.servers) {
    out.push('');
    out.push(`server ${s.name} (${s.at}; ${s.server_names.length > 0 ? s.server_names.join(' ') : 'no names'}; listen ${s.listen.join(', ')}):`);
    for (const i of s.items) out.push(`  [${MARK[i.kind]}] ${line(i)}`);
    for (const l of s.locations) {
      const what = l.outcome === 'emulated' ? `NOT MIGRATED: answers 501 not_migrated to ${l.requests}`
        : l.outcome === 'internal' ? 'internal: answers 404 to clients, as nginx does'
          : l.outcome === 'no_route' ? 'NO ROUTE: no Sluice route can match these paths; they go to whichever route matches them'
          : l.outcome === 'unreachable' ? 'never reached' : l.outcome === 'named' ? 'named location: no route' : `route ${l.route}`;
      out.push(`  ${l.location} (${l.at}): ${what}`);
      for (const i of l.items) out.push(`    [${MARK[i.kind]}] ${line(i)}`);
    }
  }
  if (r.verify !== null) {
    out.push('');
    const v = r.verify;
    out.push(`verify: ${v.requests} requests to nginx and to Sluice; ${v.same} answered alike, ${v.listed_differences} differ as the report lists, ${v.unlisted_differences} differ WITHOUT a listing`);
    const shown = [...v.differences.filter((d) => d.listed_by === undefined).slice(0, 60), ...v.differences.filter((d) => d.listed_by !== undefined).slice(0, 20)];
    if (shown.length < v.differences.length) out.push(`  (${v.differences.length - shown.length} more in the --report JSON)`);
    for (const d of shown) {
      out.push(`  ${d.listed_by === undefined ? 'UNLISTED' : 'listed'}: ${d.request}: ${d.field}: nginx ${d.nginx}, sluice ${d.sluice}${d.location === undefined ? '' : ` (nginx ${d.location})`}${d.listed_by === undefined ? '' : ` — ${d.listed_by}`}`);
    }
  }
  for (const e of r.errors) out.push(`import-nginx: error: ${e}`);
  return `${out.join('\n')}\n`;
}
