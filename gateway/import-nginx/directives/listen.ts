// listen [addr:]port [default_server] [ssl] [http2] …: each becomes (part of) a Sluice
// listener; default_server marks the virtual host answering unknown names there.

import type { DirectiveHandler } from '../table.js';

// Parameters that change nothing Sluice needs to know (socket tuning, reuseport).
const SOCKET_TUNING = /^(backlog|rcvbuf|sndbuf|reuseport|so_keepalive|fastopen|deferred|accept_filter|setfib|bind|ipv6only)(=|$)/;

export const listen: DirectiveHandler = {
  names: ['listen'],
  levels: ['server'],
  handle(d, scope, cx) {
    const [addr, ...params] = d.args;
    const parsed = addr === undefined ? undefined : parseListen(addr);
    if (parsed === undefined) return cx.list(scope, d, 'expected: listen [HOST:]PORT (unix sockets are not supported)');
    let ssl = false;
    let http2 = false;
    let defaultServer = false;
    for (const p of params) {
      if (p === 'default_server' || p === 'default') defaultServer = true;
      else if (p === 'ssl') ssl = true;
      else if (p === 'http2') { http2 = true; cx.list(scope, d, 'http2: Sluice speaks HTTP/1.1 to clients (TLS with ALPN http/1.1); clients fall back to it'); }
      else if (SOCKET_TUNING.test(p)) cx.note(scope, d, `${p}: socket tuning Sluice leaves to the OS`);
      else cx.list(scope, d, `${p}: listen parameter with no Sluice equivalent`);
    }
    scope.own.listens.push({ host: parsed.host, port: parsed.port, ssl, http2, defaultServer, d });
    cx.ok();
  },
};

export function parseListen(addr: string): { host: string | undefined; port: number } | undefined {
  if (addr.startsWith('unix:')) return undefined;
  let host: string | undefined;
  let port: string;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(addr);
  if (v6 !== null) { host = v6[1]!; port = v6[2] ?? '80'; }
  else if (/^\d+$/.test(addr)) port = addr;
  else {
    const i = addr.lastIndexOf(':');
    if (i === -1) { host = addr; port = '80'; } else { host = addr.slice(0, i); port = addr.slice(i + 1); }
  }
  if (host === '*' || host === '::' || host === '0.0.0.0') host = undefined;
  if (!/^\d+$/.test(port) || Number(port) > 65535) return undefined;
  return { host, port: Number(port) };
}

export const serverName: DirectiveHandler = {
  names: ['server_name'],
  levels: ['server'],
  handle(d, scope, cx) {
    for (const n of d.args) {
      // `_` (and any name that is no host) is the usual way to name a catch-all: it
      // matches nothing, and the server answers only as its port's default.
      if (n === '_' || n === '' || n === '$hostname') { if (n === '$hostname') cx.list(scope, d, '$hostname: the machine name is not known at import'); continue; }
      // `.example.com` is nginx's shorthand for example.com and *.example.com.
      if (n.startsWith('.')) scope.own.serverNames.push(n.slice(1), `*${n}`);
      else scope.own.serverNames.push(n.startsWith('~') ? n : n.toLowerCase());
    }
    cx.ok();
  },
};
