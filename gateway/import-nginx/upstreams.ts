// proxy_pass URL → the Sluice upstream it names (an `upstream` block, or an origin that
// becomes an upstream of its own) and the URI part nginx puts in place of the matched
// location prefix.

import type { Context, ImportedUpstream } from './context.js';
import type { Scope } from './scope.js';
import { withPort } from './directives/values.js';

export type ProxyTarget =
  | { readonly ok: true; readonly upstream: string; readonly proxyHost: string; readonly uri: string | undefined; readonly requestUri: boolean }
  | { readonly ok: false; readonly reason: string };

export function resolveProxyPass(raw: string, loc: Scope, cx: Context): ProxyTarget {
  // Variables set from constants in this server or location are constants.
  let url = raw;
  let requestUri = false;
  const unknown: string[] = [];
  url = url.replace(/\$\{?(\w+)\}?/g, (m, name: string) => {
    const v = loc.variable(name);
    if (v !== undefined && !v.includes('$')) return v;
    if (name === 'request_uri') { requestUri = true; return ''; }
    unknown.push(m);
    return m;
  });
  if (unknown.length > 0) return { ok: false, reason: `proxy_pass uses ${unknown.join(', ')}, computed per request: Sluice needs a fixed upstream` };
  const m = /^(https?):\/\/([^/?#]+)(.*)$/.exec(url);
  if (m === null) return { ok: false, reason: `${raw}: only http:// and https:// upstreams are supported` };
  const [, scheme, host, uri] = m as unknown as [string, string, string, string];
  if (host.startsWith('unix:')) return { ok: false, reason: 'unix-socket upstreams are not supported' };
  if (requestUri && uri !== '') return { ok: false, reason: 'proxy_pass with a path before $request_uri is not translated' };
  const uriPart = requestUri ? undefined : uri === '' ? undefined : uri;
  // nginx looks an `upstream` block up by the bare name; a name with a port is a host.
  if (!host.includes(':') && cx.upstreamBlocks.has(host)) {
    const u = cx.upstreams.get(host);
    if (u === undefined) return { ok: false, reason: `upstream ${host} had no importable server` };
    if (scheme === 'https') {
      const name = `${host}-https`;
      if (!cx.upstreams.has(name)) {
        cx.upstreams.set(name, { ...u, name, targets: u.targets.map((t) => ({ ...t, url: t.url.replace(/^http:/, 'https:').replace(/:80$/, ':443') })) });
      }
      return { ok: true, upstream: name, proxyHost: host, uri: uriPart, requestUri };
    }
    return { ok: true, upstream: host, proxyHost: host, uri: uriPart, requestUri };
  }
  const origin = `${scheme}://${withPort(host, scheme === 'https' ? 443 : 80)}`;
  // $proxy_host: the host as written, without the scheme's default port.
  const proxyHost = host.replace(scheme === 'https' ? /:443$/ : /:80$/, '');
  const existing = [...cx.upstreams.values()].find((u) => !u.block && u.targets[0]!.url === origin);
  if (existing !== undefined) return { ok: true, upstream: existing.name, proxyHost, uri: uriPart, requestUri };
  let name = origin.replace(/^https?:\/\//, '').replace(/[^A-Za-z0-9]+/g, '-');
  for (let k = 2; cx.upstreams.has(name); k++) name = `${name.replace(/-\d+$/, '')}-${k}`;
  const u: ImportedUpstream = { name, targets: [{ url: origin }], balancer: undefined, proxyHost, at: cx.at(loc.own.proxyPass!.d), block: false };
  cx.upstreams.set(name, u);
  return { ok: true, upstream: name, proxyHost, uri: uriPart, requestUri };
}
