import type { BalancerKind } from '../config/types.js';
import type { Target } from './target.js';

/** Chooses one of `candidates` (never empty: the upstream has already filtered out the unavailable). */
export interface Balancer {
  pick(candidates: readonly Target[], now: number): Target;
}

export function makeBalancer(kind: BalancerKind): Balancer {
  switch (kind) {
    case 'round_robin': return new RoundRobin();
    case 'weighted_round_robin': return new SmoothWeightedRoundRobin();
    case 'least_outstanding': return new LeastOutstanding();
    case 'p2c_ewma': return new PowerOfTwoChoices();
  }
}

/** Each candidate in turn; weights ignored. */
export class RoundRobin implements Balancer {
  private next = 0;
  pick(candidates: readonly Target[]): Target {
    const t = candidates[this.next % candidates.length]!;
    this.next = (this.next + 1) % 0x40000000;
    return t;
  }
}

/**
 * nginx's smooth weighted round-robin: every pick adds each candidate's weight to its
 * running score, takes the highest and subtracts the total from it. Weights 5:1:1 give
 * a a b a c a a rather than a a a a a b c, so no target gets a burst.
 */
export class SmoothWeightedRoundRobin implements Balancer {
  private readonly current = new Map<Target, number>();
  pick(candidates: readonly Target[]): Target {
    let total = 0;
    let best: Target | undefined;
    let bestScore = -Infinity;
    for (const t of candidates) {
      const score = (this.current.get(t) ?? 0) + t.weight;
      this.current.set(t, score);
      total += t.weight;
      if (score > bestScore) { best = t; bestScore = score; }
    }
    this.current.set(best!, bestScore - total);
    return best!;
  }
}

/**
 * Fewest requests in the backend per unit of weight (its advertised load when fresh).
 * Ties rotate, so an idle upstream is not all sent to the first target.
 */
export class LeastOutstanding implements Balancer {
  private start = 0;
  pick(candidates: readonly Target[], now: number): Target {
    const n = candidates.length;
    this.start = (this.start + 1) % n;
    let best = candidates[this.start]!;
    let bestLoad = best.load(now) / best.weight;
    for (let k = 1; k < n; k++) {
      const t = candidates[(this.start + k) % n]!;
      const load = t.load(now) / t.weight;
      if (load < bestLoad) { best = t; bestLoad = load; }
    }
    return best;
  }
}

/**
 * Power of two choices over peak-EWMA latency × (load + 1) (Finagle's P2C-PeakEwma, Envoy's
 * least-request): two distinct candidates at random, the cheaper one wins. Sampling two
 * instead of scanning all keeps a slow target from being starved forever (it still wins
 * when paired with a busier one) and keeps many gateways from herding onto one target.
 */
export class PowerOfTwoChoices implements Balancer {
  constructor(private readonly random: () => number = Math.random) {}

  pick(candidates: readonly Target[], now: number): Target {
    const n = candidates.length;
    if (n === 1) return candidates[0]!;
    const i = Math.floor(this.random() * n);
    let j = Math.floor(this.random() * (n - 1));
    if (j >= i) j++;
    const a = candidates[i]!;
    const b = candidates[j]!;
    return b.cost(now) < a.cost(now) ? b : a;
  }
}
