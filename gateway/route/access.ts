import type { RouteConfig } from '../config/types.js';
import { sendError } from '../http/errors.js';
import { inCidr, parseCidr, parseIp, type Cidr } from '../http/ip-address.js';
import type { Stage } from '../pipeline/context.js';

// nginx allow / deny: the rules in order, the first that covers the client address
// (ctx.clientAddress, after server.real_ip) decides; none covering it means allowed.
// Checked right after routing, before a local answer, limits and auth, so a refused
// probe costs no store call (nginx checks them after limit_req; Sluice refuses earlier,
// which costs the limiter nothing for traffic it would refuse anyway).

interface Rule {
  readonly allow: boolean;
  readonly cidr: Cidr;
}

/** Whether an address may use the route, built once from its rules. */
export type AccessCheck = (address: string) => boolean;

export function compileAccess(rules: NonNullable<RouteConfig['access']>): AccessCheck {
  const list: Rule[] = rules.map((r) => ({ allow: r.allow !== undefined, cidr: parseCidr(r.allow ?? r.deny!) as Cidr }));
  return (address) => {
    const bytes = parseIp(address);
    for (let i = 0; i < list.length; i++) {
      const r = list[i]!;
      // An address that is no IP (a unix socket peer) is covered by `all` only.
      if (bytes === undefined ? r.cidr.family === 0 : inCidr(bytes, r.cidr)) return r.allow;
    }
    return true;
  };
}

/** Why an access rule cannot be used, or undefined. */
export function accessRuleProblem(r: { allow?: unknown; deny?: unknown }): string | undefined {
  if ((r.allow === undefined) === (r.deny === undefined)) return 'give exactly one of allow or deny';
  const v = r.allow ?? r.deny;
  if (typeof v !== 'string') return undefined;
  const c = parseCidr(v);
  return typeof c === 'string' ? c : undefined;
}

/** access: 403 for a client address the route's rules refuse. */
export function accessStage(): Stage {
  return (ctx) => {
    const check = ctx.compiledRoute!.access;
    if (check === undefined || check(ctx.clientAddress)) return true;
    return sendError(ctx, 403, 'forbidden', `client address ${ctx.clientAddress} is not allowed here`);
  };
}
