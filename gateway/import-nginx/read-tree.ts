// Walks the parsed nginx tree through the handler table (directives/index.ts) into
// scopes: one per http, server and location, each holding what its own directives said.

import { Context } from './context.js';
import { HANDLERS } from './directives/index.js';
import { unhandled } from './directives/unhandled.js';
import type { Directive } from './parse.js';
import { Scope } from './scope.js';
import type { DirectiveHandler, Walker } from './table.js';

const BY_NAME = new Map<string, DirectiveHandler>(HANDLERS.flatMap((h) => h.names.map((n) => [n, h] as const)));

export function readTree(tree: readonly Directive[], cx: Context): Scope {
  const root = new Scope('main', undefined, undefined);
  const walker = cx as Walker;
  walker.walk = (block, scope) => {
    for (const d of block) {
      const h = BY_NAME.get(d.name);
      if (h !== undefined && h.levels.includes(scope.kind)) { h.handle(d, scope, walker); continue; }
      if (h !== undefined) { cx.listBlock(scope, d, `not read at this level (${scope.kind})`); continue; }
      const u = unhandled(d.name);
      cx.listBlock(scope, d, u.reason, u.kind === 'emulated' && scope.kind !== 'main' ? 'emulated' : 'listed');
    }
  };
  walker.walk(tree, root);
  return root;
}
