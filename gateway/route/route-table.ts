import type { SluiceConfig, VirtualHostConfig } from '../config/types.js';
import { CompiledRoute } from './compiled-route.js';
import { PathLevel } from './path-level.js';
import { HostTable, parseServerName, type ServerName } from './server-names.js';

/** A virtual host as requests use it: its routes' matcher, and the $host of a request without Host. */
export interface VirtualHost {
  readonly config: VirtualHostConfig;
  readonly routes: PathLevel;
  readonly defaultHost: string;
}

/** The listener every request has when the edge runs one plain listener (server.host/port). */
export const DEFAULT_LISTENER = 'default';

/**
 * Every virtual host of a config, built once, and for each listener the table that picks
 * one by Host. A virtual host without `listeners` is on every listener. A listener's
 * default (nginx default_server) is the virtual host whose default_for names it, else
 * the top-level routes (the catch-all virtual host), else its first virtual host.
 */
export class RouteTable {
  private readonly byListener = new Map<string, HostTable<VirtualHost>>();
  /** For a listener no virtual host names: the virtual hosts on every listener. */
  private readonly anyListener: HostTable<VirtualHost> | undefined;

  constructor(cfg: Pick<SluiceConfig, 'virtual_hosts'>) {
    const hosts = cfg.virtual_hosts.map((v) => ({
      v: { config: v, routes: new PathLevel(v.routes.map((r) => new CompiledRoute(r))), defaultHost: firstPlainName(v) },
      names: v.server_names.map((n) => parseServerName(n) as ServerName),
    }));
    const named = new Set([DEFAULT_LISTENER, ...cfg.virtual_hosts.flatMap((v) => [...v.listeners ?? [], ...v.default_for])]);
    for (const listener of named) {
      const table = tableFor(hosts, listener, (v) => v.listeners === undefined || v.listeners.includes(listener));
      if (table !== undefined) this.byListener.set(listener, table);
    }
    this.anyListener = tableFor(hosts, undefined, (v) => v.listeners === undefined);
  }

  /** The Host table of a listener, undefined when no virtual host is on it. */
  forListener(listener: string): HostTable<VirtualHost> | undefined {
    return this.byListener.get(listener) ?? this.anyListener;
  }
}

function tableFor(
  hosts: readonly { v: VirtualHost; names: ServerName[] }[], listener: string | undefined, on: (v: VirtualHostConfig) => boolean,
): HostTable<VirtualHost> | undefined {
  const here = hosts.filter((h) => on(h.v.config));
  if (here.length === 0) return undefined;
  const def = (listener === undefined ? undefined : here.find((h) => h.v.config.default_for.includes(listener)))
    ?? here.find((h) => h.v.config.catch_all) ?? here[0]!;
  return new HostTable(here, def.v);
}

/** nginx's $host for a request without Host: the server's first name, when it is a plain one. */
function firstPlainName(v: VirtualHostConfig): string {
  const first = v.server_names[0];
  return first !== undefined && /^[A-Za-z0-9_.-]+$/.test(first) && !first.startsWith('.') ? first.toLowerCase() : '';
}
