import type { Imported } from './build.js';
import type { Context } from './context.js';
import type { Directive } from './parse.js';
import type { ImportReport } from './report.js';
import type { Scope } from './scope.js';

// What an import produced, for the CLI (import.ts) and --verify (verify/verify.ts),
// which import.ts loads only when asked: a module of its own so neither imports the other.

export interface ImportResult {
  readonly yaml: string;
  readonly imported: Imported;
  readonly report: ImportReport;
  /** What --verify needs to run the original beside the import: the tree as read, level by level. */
  readonly tree: readonly Directive[];
  readonly root: Scope;
  readonly context: Context;
}
