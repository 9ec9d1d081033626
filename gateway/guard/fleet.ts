import { randomBytes } from 'node:crypto';
import type { Store } from '../store/types.js';
import { withDeadline } from '../../common/deadline.js';

/** How often a gateway tells the shared store it is alive; 3 missed beats and it no longer counts. */
export const HEARTBEAT_MS = 1000;
const TTL_MS = HEARTBEAT_MS * 3;

/** One id per process: a reload's new guard re-registers the same gateway, not a second one. */
const INSTANCE_ID = randomBytes(8).toString('hex');

/**
 * How many gateway processes share the store, for sizing fail-open fallback buckets.
 *
 * A count is only trusted once it can hold every live peer: a peer registers when it
 * starts and beats every second, so a count taken at least one TTL after this process
 * first registered has seen every gateway that was running then. Before that (and when
 * the store has never answered) the divisor is at least `floor` (store.fleet_floor), so
 * a fleet that starts together while Redis is down does not admit N times the plan: each
 * process assumes it is one of at least `floor`.
 */
export class Fleet {
  private live = 0;
  private registeredAt = 0;
  private trusted = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store,
    private readonly floor: number,
    private readonly timeoutMs: number,
    private readonly onCount: (live: number, divisor: number) => void,
    private readonly onError: () => void,
  ) {}

  /** The fleet size each share assumes. */
  divisor(): number {
    return this.trusted ? Math.max(1, this.live) : Math.max(this.floor, this.live);
  }

  /** The first beat, awaited (within a few store timeouts) before the gateway listens; then one a second. */
  async start(): Promise<void> {
    if (this.store.heartbeat === undefined) return;
    this.onCount(this.live, this.divisor());
    await this.beat();
    this.timer = setInterval(() => void this.beat(), HEARTBEAT_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async beat(): Promise<void> {
    const sentAt = Date.now();
    try {
      const n = await withDeadline(this.store.heartbeat!(INSTANCE_ID, TTL_MS), Math.max(200, this.timeoutMs * 4), 'heartbeat');
      if (this.registeredAt === 0) this.registeredAt = sentAt;
      else if (sentAt - this.registeredAt >= TTL_MS) this.trusted = true;
      this.live = Math.max(1, n);
      this.onCount(this.live, this.divisor());
    } catch {
      this.onError();
    }
  }
}
