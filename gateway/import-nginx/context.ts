// What every directive handler shares while one nginx tree is read: the report (every
// directive ends up translated, listed, emulated, not enforced or noted) and the
// http-level registries (zones, upstreams) that locations refer to by name.

import type { Directive } from './parse.js';
import type { ItemKind, PlacedItem } from './report.js';
import type { Scope, ZoneKey } from './scope.js';

export interface ReqZone {
  readonly name: string;
  readonly key: ZoneKey;
  /** Requests per `per`. */
  readonly rate: number;
  readonly per: 's' | 'm';
  /** As written in zone=NAME:SIZE; Sluice accepts it and sizes its store itself. */
  readonly size: string | undefined;
  readonly at: string;
}

export interface ConnZone {
  readonly name: string;
  readonly key: ZoneKey;
  readonly size: string | undefined;
  readonly at: string;
}

/** A server line: a plain origin unless a parameter needs the object form. */
export interface ImportedTarget {
  readonly url: string;
  weight?: number;
  backup?: boolean;
  max_fails?: number;
  fail_timeout_ms?: number;
}

export type Balancer = 'round_robin' | 'weighted_round_robin' | 'least_outstanding' | 'p2c_ewma';

export interface ImportedUpstream {
  readonly name: string;
  readonly targets: ImportedTarget[];
  /** nginx's default method is weighted round-robin; Sluice's is not, so it is always written. */
  balancer: Balancer | undefined;
  /** Emitted for `upstream` blocks and inline origins alike: the name nginx sends as Host by default ($proxy_host). */
  readonly proxyHost: string;
  readonly at: string;
  /** True for an `upstream` block (its own section), false for a proxy_pass origin. */
  readonly block: boolean;
}

export class Context {
  translated = 0;
  readonly reqZones: ReqZone[] = [];
  readonly connZones: ConnZone[] = [];
  /** Zones named but not imported, with where they were defined. */
  readonly badZones = new Map<string, string>();
  readonly upstreamBlocks = new Map<string, Directive>();
  readonly upstreams = new Map<string, ImportedUpstream>();
  /** lua_shared_dict names: a Lua limiter's store. */
  readonly sharedDicts = new Set<string>();

  constructor(readonly displayFile: (file: string) => string, readonly prefix: string) {}

  at(d: Directive): string {
    return `${this.displayFile(d.file)}:${d.line}`;
  }

  ok(): void {
    this.translated++;
  }

  item(scope: Scope, d: Directive, kind: ItemKind, reason: string, directive = show(d)): PlacedItem {
    const it: PlacedItem = { kind, file: this.displayFile(d.file), line: d.line, directive, reason };
    scope.items.push(it);
    return it;
  }

  /** Not translated; the reason says how Sluice differs. */
  list(scope: Scope, d: Directive, reason: string): void {
    this.item(scope, d, 'listed', reason);
  }

  note(scope: Scope, d: Directive, reason: string): void {
    this.item(scope, d, 'note', reason);
  }

  /** Decides the answer and has no translation: the location (or, at server level, every location) answers 501. */
  block(scope: Scope, d: Directive, reason: string): void {
    scope.own.blockers.push(this.item(scope, d, 'emulated', reason));
  }

  notEnforced(scope: Scope, d: Directive, reason: string): void {
    this.item(scope, d, 'not_enforced', reason);
  }

  /** A block nobody imports: itself and everything inside, so nothing inside is silent. */
  listBlock(scope: Scope, d: Directive, reason: string, kind: 'listed' | 'emulated' = 'listed'): void {
    if (kind === 'emulated') this.block(scope, d, reason);
    else this.list(scope, d, reason);
    if (d.block === undefined || DATA_BLOCKS.has(d.name)) return;
    for (const c of d.block) this.listBlock(scope, c, `inside untranslated "${d.name}" at ${this.at(d)}`);
  }
}

// Blocks whose contents are not directives (map entries, MIME types, addresses): the
// block is reported once, as a whole.
export const DATA_BLOCKS = new Set(['map', 'types', 'geo', 'split_clients', 'charset_map', 'match']);

export function show(d: Directive): string {
  const head = [d.name, ...d.args.map(quoteArg)].join(' ');
  return d.lua === undefined ? head : `${head} { … }`;
}

function quoteArg(a: string): string {
  return a === '' || /[\s;{}"'#]/.test(a) ? JSON.stringify(a) : a;
}
