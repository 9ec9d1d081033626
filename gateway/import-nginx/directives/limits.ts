// limit_req, limit_conn and their statuses, at http, server or location level. nginx
// inherits a level's list of limit_req (or limit_conn) only when the level sets none.

import type { Directive } from '../parse.js';
import type { DirectiveHandler } from '../table.js';

export const limitReq: DirectiveHandler = {
  names: ['limit_req'],
  levels: ['http', 'server', 'location'],
  handle(d, scope, cx) {
    // Set even when this one is refused: the level still replaced what it inherits.
    const list = (scope.s.limitReq ??= []);
    let zone: string | undefined;
    let burst = 0;
    let nodelay = false;
    let delay = 0;
    for (const a of d.args) {
      if (a.startsWith('zone=')) zone = a.slice(5);
      else if (/^burst=\d+$/.test(a)) burst = Number(a.slice(6));
      // nginx lets the later of nodelay / delay=N win; Sluice accepts only one of them.
      else if (a === 'nodelay') { nodelay = true; delay = 0; }
      else if (/^delay=\d+$/.test(a)) { delay = Number(a.slice(6)); nodelay = false; }
      else return cx.list(scope, d, `unknown parameter ${JSON.stringify(a)}`);
    }
    if (zone === undefined) return cx.list(scope, d, 'no zone=');
    list.push({ zone, burst, nodelay, delay, at: cx.at(d) });
    cx.ok();
  },
};

export const limitConn: DirectiveHandler = {
  names: ['limit_conn'],
  levels: ['http', 'server', 'location'],
  handle(d, scope, cx) {
    const list = (scope.s.limitConn ??= []);
    if (d.args.length !== 2 || !/^\d+$/.test(d.args[1]!)) return cx.list(scope, d, 'expected: limit_conn ZONE NUMBER');
    list.push({ zone: d.args[0]!, max: Number(d.args[1]), at: cx.at(d) });
    cx.ok();
  },
};

function status(d: Directive): number | undefined {
  const v = d.args[0];
  if (d.args.length !== 1 || !/^\d{3}$/.test(v!) || Number(v) < 400 || Number(v) > 599) return undefined;
  return Number(v);
}

export const limitStatus: DirectiveHandler = {
  names: ['limit_req_status', 'limit_conn_status'],
  levels: ['http', 'server', 'location'],
  handle(d, scope, cx) {
    const s = status(d);
    if (s === undefined) return cx.list(scope, d, 'expected a status code between 400 and 599');
    if (d.name === 'limit_req_status') scope.s.limitReqStatus = s;
    else scope.s.limitConnStatus = s;
    cx.ok();
  },
};
