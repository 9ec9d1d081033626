import type { RouteConfig } from '../config/types.js';
import type { RequestContext } from '../pipeline/context.js';
import { compileRegex } from './regex.js';

// A route's conditions beside its path: methods and request headers, all of which must
// hold. A route whose conditions fail is, for that request, as if it were not written:
// the path search goes on to the next candidate by nginx's rules (docs/routes.md).

export type Condition = (ctx: RequestContext) => boolean;

type HeaderRule = NonNullable<RouteConfig['headers']>[number];

/** One function for all of a route's conditions, or undefined when it has none. */
export function compileConditions(route: Pick<RouteConfig, 'methods' | 'headers'>): Condition | undefined {
  const checks: Condition[] = [];
  if (route.methods !== undefined) {
    const methods = route.methods;
    checks.push(methods.length === 1 ? (ctx) => ctx.req.method === methods[0] : (ctx) => methods.includes(ctx.req.method!));
  }
  for (const h of route.headers ?? []) checks.push(headerCondition(h));
  if (checks.length === 0) return undefined;
  if (checks.length === 1) return checks[0];
  return (ctx) => {
    for (let i = 0; i < checks.length; i++) if (!checks[i]!(ctx)) return false;
    return true;
  };
}

/** A header's values: repeated headers are several values, any one of which may satisfy exact or regex. */
function headerCondition(h: HeaderRule): Condition {
  const name = h.name.toLowerCase();
  if (h.present === true) return (ctx) => ctx.req.headers[name] !== undefined;
  if (h.absent === true) return (ctx) => ctx.req.headers[name] === undefined;
  if (h.exact !== undefined) {
    const want = h.exact;
    return (ctx) => ctx.req.headersDistinct[name]?.includes(want) === true;
  }
  const re = compileRegex(h.regex!) as RegExp;
  return (ctx) => ctx.req.headersDistinct[name]?.some((v) => re.test(v)) === true;
}

/** Why a header condition cannot be used, or undefined. */
export function headerConditionProblem(h: Partial<HeaderRule>): string | undefined {
  const given = (['exact', 'regex', 'present', 'absent'] as const).filter((k) => h[k] !== undefined);
  if (given.length !== 1) return `give exactly one of exact, regex, present: true or absent: true (got ${given.length === 0 ? 'none' : given.join(', ')})`;
  if (h.present === false || h.absent === false) return `${given[0]}: only true means anything here; drop the condition instead`;
  return undefined;
}
