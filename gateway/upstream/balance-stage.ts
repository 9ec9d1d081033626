import type { Stage } from '../pipeline/context.js';
import type { PoolSet } from './pool-set.js';

/** balance: choose the target of the route's upstream. */
export function balanceStage(pools: PoolSet): Stage {
  return (ctx) => {
    ctx.target = pools.get(ctx.route!.upstream).pick();
    return true;
  };
}
