import { LRUCache } from 'lru-cache';
import { labelChildren, type Metrics } from '../observe/metrics.js';
import type { Limited } from './limited.js';
import type { Decision } from '../store/types.js';

/** Below this share of a limit left, a subject counts as near it. */
const NEAR_SHARE = 0.2;
const WINDOW_MS = 60_000;

type Limit = 'rate' | 'day' | 'month' | 'inflight';

/**
 * Who is close to a limit, with label sets bounded by configuration: a counter by plan
 * and limit kind, and a gauge of distinct subjects per plan over the last minute. The
 * subjects themselves never become labels; they live in a capped LRU, so a flood of
 * customers costs a fixed amount of memory and, past the cap, undercounts the oldest.
 */
export class NearLimit {
  private readonly recent: LRUCache<string, { plan: string; at: number }>;
  private readonly child: (plan: string, limit: string) => { inc(): void };

  constructor(metrics: Metrics, maxSubjects = 10_000) {
    this.recent = new LRUCache({ max: maxSubjects });
    this.child = labelChildren((...v: string[]) => metrics.limitNear.labels(...v));
    metrics.watchNearSubjects(() => this.perPlan(Date.now()));
  }

  /** An admitted request's decision. */
  observe(id: Limited, d: Decision): void {
    const p = id.policy;
    let near = false;
    if (p.rate > 0 && d.remaining < p.burst * NEAR_SHARE) near = this.count(id, 'rate');
    if (p.quotaDay > 0 && p.quotaDay - d.dayUsed < p.quotaDay * NEAR_SHARE) near = this.count(id, 'day');
    if (p.quotaMonth > 0 && p.quotaMonth - d.monthUsed < p.quotaMonth * NEAR_SHARE) near = this.count(id, 'month');
    if (p.maxInflight > 0 && p.maxInflight - d.inflight < p.maxInflight * NEAR_SHARE) near = this.count(id, 'inflight');
    if (near) this.recent.set(id.subject, { plan: id.plan.name, at: Date.now() });
  }

  private count(id: Limited, limit: Limit): true {
    this.child(id.plan.name, limit).inc();
    return true;
  }

  private perPlan(now: number): Map<string, number> {
    const out = new Map<string, number>();
    for (const v of this.recent.values()) {
      if (now - v.at <= WINDOW_MS) out.set(v.plan, (out.get(v.plan) ?? 0) + 1);
    }
    return out;
  }
}
