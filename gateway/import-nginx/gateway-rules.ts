// Where Sluice differs from nginx by design, whatever the config says: listed in every
// import report (outside any server), and what --verify checks a difference against
// before it calls it unlisted. docs/routes.md ("What is forwarded") gives the reasons.

import type { PlacedItem } from './report.js';

export interface GatewayRule {
  readonly item: PlacedItem;
  /** Whether a difference in `field` for a request with this path is this rule's doing. */
  applies(path: string, field: string): boolean;
}

const item = (directive: string, reason: string): PlacedItem => ({ kind: 'listed', file: '(sluice)', line: 0, directive, reason });

export const GATEWAY_RULES: readonly GatewayRule[] = [
  {
    item: item('encoded slash', 'Sluice answers 400 to a path with an encoded slash (%2F) or a backslash (raw or %5C), which a backend may read as another path; nginx decodes %2F and routes the request'),
    applies: (path) => /%2f|%5c|\\/i.test(path.split('?')[0]!),
  },
  {
    item: item('path normalisation', 'Without a path rewrite, Sluice forwards the client\'s path with its dot segments resolved and repeated slashes merged (the path it routed on); nginx forwards it as the client wrote it'),
    applies: (path, field) => field === 'path' && /\/\.{1,2}(\/|$)|\/\/|%2e/i.test(path.split('?')[0]!),
  },
];
