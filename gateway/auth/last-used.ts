import type { Store } from '../store/types.js';

/**
 * Keys' last-used times, written to the store in one batch every flushMs instead of one
 * write per request. A request only sets this key's entry in a map (one entry per key
 * used since the last flush, not per request); a failed flush keeps its entries for the
 * next one.
 */
export class LastUsed {
  private pending = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();

  constructor(private readonly store: Store, flushMs: number, private readonly onError: (err: Error) => void) {
    this.timer = setInterval(() => void this.flush(), flushMs);
    this.timer.unref();
  }

  touch(digest: string, at: number): void {
    this.pending.set(digest, at);
  }

  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (this.pending.size === 0) return;
      const batch = this.pending;
      this.pending = new Map();
      try {
        await this.store.touchKeys(batch);
      } catch (err) {
        for (const [digest, at] of batch) if ((this.pending.get(digest) ?? 0) < at) this.pending.set(digest, at);
        this.onError(err as Error);
      }
    });
    return this.flushing;
  }

  /** Stops the timer and writes what is pending. */
  stop(): Promise<void> {
    clearInterval(this.timer);
    return this.flush();
  }
}
