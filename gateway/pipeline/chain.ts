import type { RequestContext, Stage } from './context.js';

/**
 * Runs the stages in order, like Envoy's filter chain: each one continues the chain
 * or answers the request itself. Synchronous stages cost no promise.
 */
export function makeChain(stages: readonly Stage[], onError: (ctx: RequestContext, err: unknown) => void): (ctx: RequestContext) => void {
  const n = stages.length;
  const run = (ctx: RequestContext, from: number): void => {
    for (let i = from; i < n; i++) {
      let r: boolean | Promise<boolean>;
      try {
        r = stages[i]!(ctx);
      } catch (err) {
        onError(ctx, err);
        return;
      }
      if (r === true) continue;
      if (r === false) return;
      const next = i + 1;
      r.then((ok) => { if (ok) run(ctx, next); }, (err: unknown) => onError(ctx, err));
      return;
    }
  };
  return (ctx) => run(ctx, 0);
}
