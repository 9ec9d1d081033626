import { sendError } from '../http/errors.js';
import type { Metrics } from '../observe/metrics.js';
import type { Stage } from '../pipeline/context.js';
import type { PoolSet } from './pool-set.js';

/**
 * balance: choose the target of the route's upstream, or answer 503 at once when none is
 * up (`unavailable`) or every one is at its circuit-breaker limits (`overloaded`).
 */
export function balanceStage(pools: PoolSet, metrics?: Metrics): Stage {
  return (ctx) => {
    // Routes that answer themselves (return) have done so before this stage.
    const name = ctx.route!.upstream!;
    const target = pools.get(name).choose(performance.now());
    if (target === 'unavailable') return sendError(ctx, 503, 'unavailable', `no healthy target in upstream ${name}`);
    if (target === 'overloaded') {
      metrics?.breakerRejected(name);
      return sendError(ctx, 503, 'overloaded', `every target of upstream ${name} is at its connection limits`, ['retry-after', '1']);
    }
    ctx.target = target;
    return true;
  };
}
