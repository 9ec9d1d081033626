// One nginx level (http, server, location) as the importer reads it: what each directive
// set at that level, kept apart from the levels above. nginx merges a child's settings
// with its parent's after the whole file is read, and for nearly every directive the rule
// is the same: a level that sets a directive at all (even one `proxy_set_header` among
// several inherited ones) replaces the parent's value whole. `effective` applies that rule.

import type { Directive } from './parse.js';
import type { PlacedItem } from './report.js';

export type ScopeKind = 'main' | 'http' | 'server' | 'location';

export type ZoneKey = { readonly kind: 'client' } | { readonly kind: 'header'; readonly header: string };

export interface ReqLimit {
  readonly zone: string;
  readonly burst: number;
  /** nginx: nodelay = no delay at all; delay=N = the first N excess requests pass undelayed. */
  readonly nodelay: boolean;
  readonly delay: number;
  readonly at: string;
}

export interface ConnLimit { readonly zone: string; readonly max: number; readonly at: string }

export interface HeaderEdit { readonly name: string; readonly value: string; readonly d: Directive }

export interface AccessRule { readonly rule: 'allow' | 'deny'; readonly cidr: string }

export interface ProxyPass {
  /** The URL after constant `set` variables were substituted. */
  readonly url: string;
  readonly d: Directive;
}

export interface ReturnAction { readonly status: number; readonly text: string | undefined; readonly d: Directive }

export interface Rewrite { readonly regex: string; readonly replacement: string; readonly flag: string | undefined; readonly d: Directive }

/** A server-level `if ($host = name) { return … }`: a redirect for that one name. */
export interface HostReturn { readonly host: string; readonly regex: boolean; readonly caseless: boolean; readonly ret: ReturnAction; readonly d: Directive }

export interface Listen {
  readonly host: string | undefined;
  readonly port: number;
  readonly ssl: boolean;
  readonly http2: boolean;
  readonly defaultServer: boolean;
  readonly d: Directive;
}

/** What a Lua handler turned into (a limit on the location), or why it did not. */
export interface LuaLimitReq { readonly kind: 'req'; readonly key: ZoneKey; readonly perSecond: number; readonly burst: number; readonly nodelay: boolean; readonly status: number; readonly dict: string }
export interface LuaLimitConn { readonly kind: 'conn'; readonly key: ZoneKey; readonly max: number; readonly status: number; readonly dict: string }
export type LuaLimit = LuaLimitReq | LuaLimitConn;

/** Settings one level sets; undefined = not set here (inherited). */
export interface Settings {
  limitReq?: ReqLimit[];
  limitReqStatus?: number;
  limitConn?: ConnLimit[];
  limitConnStatus?: number;
  proxySetHeader?: HeaderEdit[];
  proxyHideHeader?: string[];
  addHeader?: (HeaderEdit & { always: boolean })[];
  access?: AccessRule[];
  maxBodyBytes?: number;
  realIpFrom?: string[];
  realIpHeader?: string;
  realIpRecursive?: boolean;
  connectTimeoutMs?: number;
  readTimeoutMs?: number;
  sendTimeoutMs?: number;
  proxyHttpVersion?: string;
  defaultType?: string;
  sslCertificate?: { path: string; d: Directive }[];
  sslCertificateKey?: { path: string; d: Directive }[];
  sslProtocols?: string[];
  sslCiphers?: string;
  errorPage?: Directive[];
  /** Lua limits, in handler order (each phase handler replaces the parent's, as nginx does). */
  luaLimits?: LuaLimit[];
}

/** Per level and not inherited: what the level itself does. */
export interface Own {
  proxyPass?: ProxyPass;
  ret?: ReturnAction;
  rewrites: Rewrite[];
  hostReturns: HostReturn[];
  /** `set $name value` in this level, in order. */
  sets: Map<string, { value: string; d: Directive }>;
  internal: boolean;
  /** try_files: files on disk first, then its last argument. */
  tryFiles?: Directive;
  listens: Listen[];
  serverNames: string[];
  /** Directives that decide the answer and have no translation: the location is emulated. */
  blockers: PlacedItem[];
}

export class Scope {
  readonly s: Settings = {};
  readonly own: Own = { rewrites: [], hostReturns: [], sets: new Map(), internal: false, listens: [], serverNames: [], blockers: [] };
  readonly children: Scope[] = [];
  /** Items reported about directives at this level (file:line order is restored by the report). */
  readonly items: PlacedItem[] = [];

  constructor(readonly kind: ScopeKind, readonly d: Directive | undefined, readonly parent: Scope | undefined) {
    parent?.children.push(this);
  }

  /** nginx's merge: the nearest level that sets the field. */
  effective<K extends keyof Settings>(k: K): Settings[K] {
    for (let sc: Scope | undefined = this; sc !== undefined; sc = sc.parent) {
      if (sc.s[k] !== undefined) return sc.s[k];
    }
    return undefined;
  }

  /** The nearest enclosing scope of a kind (itself included). */
  up(kind: ScopeKind): Scope | undefined {
    for (let sc: Scope | undefined = this; sc !== undefined; sc = sc.parent) if (sc.kind === kind) return sc;
    return undefined;
  }

  /** `set $name` visible here: this location's, then its parents' up to the server (the rewrite phase runs server, then location). */
  variable(name: string): string | undefined {
    for (let sc: Scope | undefined = this; sc !== undefined && sc.kind !== 'http'; sc = sc.parent) {
      const v = sc.own.sets.get(name);
      if (v !== undefined) return v.value;
    }
    return undefined;
  }
}
