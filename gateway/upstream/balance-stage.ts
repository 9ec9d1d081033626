import { sendError } from '../http/errors.js';
import type { Stage } from '../pipeline/context.js';
import type { PoolSet } from './pool-set.js';

/** balance: choose the target of the route's upstream, or answer 503 at once when none is up. */
export function balanceStage(pools: PoolSet): Stage {
  return (ctx) => {
    const name = ctx.route!.upstream;
    const target = pools.get(name).pick();
    if (target === undefined) return sendError(ctx, 503, 'unavailable', `no healthy target in upstream ${name}`);
    ctx.target = target;
    return true;
  };
}
