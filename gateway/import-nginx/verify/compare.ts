// nginx's answer and Sluice's to one request, field by field: status, the upstream
// reached, the path and Host it received, Location, and the headers the config sets
// (upstream-bound) or adds (client-bound). A difference is "listed" when the import
// report already says this request is treated differently: the location that answered
// in nginx is emulated (501 not_migrated), or an item about what differs is listed there,
// in its server or outside every server.

import { GATEWAY_RULES } from '../gateway-rules.js';
import type { ImportReport, LocationReport, PlacedItem, ServerReport, VerifyDifference } from '../report.js';
import type { Outcome } from './send.js';
import type { VerifyRequest } from './requests.js';

export interface CompareContext {
  readonly report: ImportReport;
  /** Request headers the config sets upstream, lower case, with whether the value varies per request. */
  readonly requestHeaders: ReadonlyMap<string, boolean>;
  /** Response headers the config adds, lower case. */
  readonly responseHeaders: ReadonlySet<string>;
  /** Each side's port → the original port, to read Location headers on the original ports. */
  readonly nginxPorts: ReadonlyMap<number, number>;
  readonly sluicePorts: ReadonlyMap<number, number>;
}

const ROUTING = /^(if|error_page|rewrite|return|try_files|include|set|auth_\w+|limit_except|satisfy|\w+_by_lua\w*|proxy_pass|location|listen|server|internal|allow|deny|proxy_redirect|zone|upstream|server_name|client_max_body_size|proxy_intercept_errors)\b/;

export function compare(r: VerifyRequest, n: Outcome, s: Outcome, cx: CompareContext): VerifyDifference[] {
  const out: VerifyDifference[] = [];
  const place = locate(n.at, r.server, cx.report);
  const diff = (field: string, nv: string, sv: string): void => {
    if (nv === sv) return;
    const rule = GATEWAY_RULES.find((g) => g.applies(r.path, field, nv, sv, s.status));
    const listedBy = rule === undefined ? excuse(field, place) : `${rule.item.file}: ${rule.item.directive} — ${rule.item.reason}`;
    out.push({ request: describe(r), server: place.server?.name, location: place.location?.location, field, nginx: nv, sluice: sv, listed_by: listedBy });
  };
  diff('status', n.status === 0 ? `no answer (${n.error})` : String(n.status), s.status === 0 ? `no answer (${s.error})` : String(s.status));
  diff('upstream', n.echo?.upstream ?? '-', s.echo?.upstream ?? '-');
  if (n.echo !== undefined && s.echo !== undefined) {
    diff('path', n.echo.path, s.echo.path);
    diff('host', n.echo.host, s.echo.host);
    for (const [name, varies] of cx.requestHeaders) {
      const a = n.echo.headers[name];
      const b = s.echo.headers[name];
      diff(`request header ${name}`, show(a, varies), show(b, varies));
    }
  }
  diff('location', portsBack(n.headers.location, cx.nginxPorts), portsBack(s.headers.location, cx.sluicePorts));
  if (n.status !== 0 && s.status !== 0) {
    for (const name of cx.responseHeaders) diff(`response header ${name}`, show(n.headers[name], false), show(s.headers[name], false));
  }
  return out;
}

function show(v: string | string[] | undefined, varies: boolean): string {
  if (v === undefined) return '(absent)';
  if (varies) return '(present)';
  return Array.isArray(v) ? v.join(', ') : v;
}

function describe(r: VerifyRequest): string {
  return `${r.websocket ? 'WS ' : ''}${r.method} ${r.host} ${r.listener} ${r.path}`;
}

/** A Location on the original ports: each side's port mapped back, default ports dropped. */
function portsBack(v: string | string[] | undefined, ports: ReadonlyMap<number, number>): string {
  if (v === undefined) return '(absent)';
  const loc = Array.isArray(v) ? v[0]! : v;
  return loc.replace(/^(https?):\/\/([^/:]+):(\d+)/, (_m, scheme: string, host: string, port: string) => {
    const orig = ports.get(Number(port)) ?? Number(port);
    return (scheme === 'http' && orig === 80) || (scheme === 'https' && orig === 443) ? `${scheme}://${host}` : `${scheme}://${host}:${orig}`;
  });
}

interface Place { readonly server: ServerReport | undefined; readonly location: LocationReport | undefined; readonly global: readonly PlacedItem[] }

/** Where nginx answered: its marker header, else (no answer, or one made before any server was chosen) the server the request was made for. */
function locate(at: string | undefined, server: string, report: ImportReport): Place {
  if (at !== undefined) {
    for (const s of report.servers) {
      if (at === `server ${s.at}`) return { server: s, location: undefined, global: report.global };
      const l = s.locations.find((x) => x.at === at);
      if (l !== undefined) return { server: s, location: l, global: report.global };
    }
  }
  return { server: report.servers.find((s) => s.name === server), location: undefined, global: report.global };
}

function excuse(field: string, p: Place): string | undefined {
  if (p.location?.outcome === 'emulated') return `${p.location.location} (${p.location.at}) answers 501 not_migrated, as the report lists`;
  // An item about the server block itself (no location for /, no certificate) concerns
  // only the answers nginx made without a location.
  const serverItems = (p.server?.items ?? []).filter((i) => p.location === undefined || i.directive !== 'server');
  const items = [...(p.location?.items ?? []), ...serverItems, ...p.global];
  const header = /^(request|response) header (.+)$/.exec(field);
  const relevant = (i: PlacedItem): boolean => {
    if (i.kind === 'not_enforced') return true;
    const d = i.directive.toLowerCase();
    if (header !== null) {
      const name = header[2]!;
      return header[1] === 'request'
        ? d.startsWith(`proxy_set_header ${name} `) || d.startsWith('more_set_input_headers') || d.startsWith('more_clear_input_headers')
        : d.startsWith(`add_header ${name} `) || d.startsWith(`proxy_hide_header ${name}`) || d.startsWith('more_set_headers') || d.startsWith('more_clear_headers');
    }
    if (field === 'host') return d.startsWith('proxy_set_header host ');
    if (i.kind === 'note' && !/never reached|rewrite|return|relative|redirect/.test(i.reason)) return false;
    return ROUTING.test(d);
  };
  const hit = items.find(relevant);
  return hit === undefined ? undefined : `${hit.file}:${hit.line}: ${hit.directive} — ${hit.reason}`;
}
