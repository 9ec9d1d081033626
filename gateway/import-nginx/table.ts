// The importer is a table of directive handlers: a new nginx directive is one file under
// directives/ plus one line in directives/index.ts. A handler records what its directive
// means at the level it appears (scope.ts); routes are built from the recorded levels
// once the whole tree is read (build.ts), since nginx too merges levels after reading.

import type { Context } from './context.js';
import type { Directive } from './parse.js';
import type { Scope, ScopeKind } from './scope.js';

export interface DirectiveHandler {
  /** The directive names it handles. */
  readonly names: readonly string[];
  /** The levels it is read at; anywhere else the directive is reported as misplaced. */
  readonly levels: readonly ScopeKind[];
  handle(d: Directive, scope: Scope, cx: Walker): void;
}

/** The context plus a way into nested blocks (handlers do not import the walker: no cycle). */
export interface Walker extends Context {
  walk(block: readonly Directive[], scope: Scope): void;
}
