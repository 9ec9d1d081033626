import type { RouteConfig } from '../config/types.js';
import { sendError } from '../http/errors.js';
import type { Stage } from '../pipeline/context.js';

/** route: the longest configured prefix that matches the path (on a segment boundary). */
export function routeStage(routes: readonly RouteConfig[]): Stage {
  const byLength = routes.filter((r) => r.prefix !== undefined).sort((a, b) => b.prefix!.length - a.prefix!.length);
  const match = (path: string): RouteConfig | undefined => {
    for (const r of byLength) {
      const p = r.prefix!;
      if (path.startsWith(p) && (p.endsWith('/') || path.length === p.length || path.charCodeAt(p.length) === 47)) return r;
    }
    return undefined;
  };
  return (ctx) => {
    const route = match(ctx.path);
    if (route === undefined) return sendError(ctx, 404, 'not_found', `no route for ${ctx.path}`);
    ctx.route = route;
    return true;
  };
}
