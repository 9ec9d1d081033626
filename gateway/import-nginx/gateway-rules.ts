// Where Sluice differs from nginx by design, whatever the config says: listed in every
// import report (outside any server), and what --verify checks a difference against
// before it calls it unlisted. docs/routes.md ("What is forwarded") gives the reasons.

import type { PlacedItem } from './report.js';

export interface GatewayRule {
  readonly item: PlacedItem;
  /** Whether a difference in `field` (nginx's value, Sluice's) for a request with this path is this rule's doing. */
  applies(path: string, field: string, nginx: string, sluice: string, sluiceStatus: number): boolean;
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
  {
    item: item('forwarding headers', 'Sluice always sends X-Request-Id, X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host and X-Real-IP upstream (its contract with upstreams); nginx sends only the headers its proxy_set_header lines set'),
    applies: (_p, field, nginx) => nginx === '(absent)' && /^request header (x-request-id|x-forwarded-for|x-forwarded-proto|x-forwarded-host|x-real-ip)$/.test(field),
  },
  {
    item: item('refused requests', 'A request Sluice refuses before choosing a route (a path that climbs out of the root, a bad escape) gets its JSON error answer with Cache-Control: no-store and none of the route\'s response headers'),
    applies: (_p, field, _n, _s, sluiceStatus) => sluiceStatus === 400 && field.startsWith('response header '),
  },
  {
    item: item('gateway error answers', "The answers Sluice makes itself on a proxy route (403 for allow/deny, 413, 429, 502, 503, 504) are its JSON error envelope with Cache-Control: no-store, without the route's add_header lines (nginx adds those marked `always`)"),
    applies: (_p, field, nginx, sluice, sluiceStatus) => sluiceStatus >= 400 && field.startsWith('response header ')
      && (sluice === '(absent)' || (field === 'response header cache-control' && nginx === '(absent)' && sluice === 'no-store')),
  },
];
