// The levels: http, server and location each open a scope and read their block.

import type { DirectiveHandler } from '../table.js';
import { Scope, type ScopeKind } from '../scope.js';

/** A block that opens a level of its own inside `parent`. */
function level(name: 'http' | 'server', parent: ScopeKind): DirectiveHandler {
  return {
    names: [name],
    levels: [parent],
    handle(d, scope, cx) {
      if (d.block === undefined) return cx.list(scope, d, `${name} without a block`);
      cx.ok();
      cx.walk(d.block, new Scope(name, d, scope));
    },
  };
}

export const http = level('http', 'main');
export const server = level('server', 'http');

const MODIFIERS = new Set(['=', '~', '~*', '^~']);

export const location: DirectiveHandler = {
  names: ['location'],
  levels: ['server', 'location'],
  handle(d, scope, cx) {
    if (d.block === undefined) return cx.list(scope, d, 'location without a block');
    const ok = (d.args.length === 1 && !MODIFIERS.has(d.args[0]!)) || (d.args.length === 2 && MODIFIERS.has(d.args[0]!));
    if (!ok) return cx.listBlock(scope, d, 'expected: location [=|~|~*|^~] URI');
    cx.ok();
    cx.walk(d.block, new Scope('location', d, scope));
  },
};

export const events: DirectiveHandler = {
  names: ['events'],
  levels: ['main'],
  handle(d, scope, cx) {
    cx.listBlock(scope, d, 'nginx process setting with no Sluice equivalent (Sluice: --workers)');
  },
};
