/**
 * Admission control for one backend process: at most `concurrency` jobs run at once and
 * at most `queue` more are admitted and waiting. A request reserves its place *before*
 * its body is read, so the memory a backend can hold is bounded by
 * (concurrency + queue) × max body bytes, and a full backend refuses without reading.
 *
 * A reservation starts "queued" (reading its body, fetching, or waiting for a slot),
 * becomes "in flight" while its job runs, and gives its place back when released.
 */
export interface PoolOptions {
  readonly concurrency: number;
  readonly queue: number;
}

export interface PoolLoad {
  readonly inflight: number;
  readonly queued: number;
  /** concurrency + queue: how many requests are admitted before the backend sheds load. */
  readonly capacity: number;
}

export class PoolWaitTimeout extends Error {
  constructor() { super('timed out waiting for a processing slot'); }
}

export interface Reservation {
  /**
   * Waits for a processing slot (first come, first served), runs `job`, then frees the
   * slot. The slot stays taken until `job` settles even if the caller gave up on it,
   * because the work (a libvips pipeline) cannot be interrupted and still costs CPU.
   */
  run<T>(job: () => Promise<T>, waitTimeoutMs?: number): Promise<T>;
  /** Gives the place back if the job never started (client gone, bad input). Idempotent. */
  release(): void;
}

export class Pool {
  readonly concurrency: number;
  readonly queueLimit: number;
  private running = 0;
  private waiting = 0;
  // FIFO of jobs waiting for a slot; bounded by queueLimit because only reservations wait.
  private readonly waiters: Array<() => void> = [];

  constructor(opts: PoolOptions) {
    if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1) throw new RangeError('concurrency must be an integer >= 1');
    if (!Number.isInteger(opts.queue) || opts.queue < 0) throw new RangeError('queue must be an integer >= 0');
    this.concurrency = opts.concurrency;
    this.queueLimit = opts.queue;
  }

  get load(): PoolLoad {
    return { inflight: this.running, queued: this.waiting, capacity: this.concurrency + this.queueLimit };
  }

  /** The `X-Backend-Load` header value. */
  header(): string {
    return `inflight=${this.running}; queued=${this.waiting}; capacity=${this.concurrency + this.queueLimit}`;
  }

  /** A place in the backend, or undefined when it is full (the caller answers 503 at once). */
  reserve(): Reservation | undefined {
    if (this.running + this.waiting >= this.concurrency + this.queueLimit) return undefined;
    this.waiting++;
    let state: 'queued' | 'waiting' | 'running' | 'done' = 'queued';
    let wake: (() => void) | undefined;

    const leaveQueue = (): void => {
      this.waiting--;
    };
    const finish = (): void => {
      this.running--;
      state = 'done';
      this.dispatch();
    };

    return {
      release: () => {
        if (state === 'queued') { state = 'done'; leaveQueue(); this.dispatch(); return; }
        if (state === 'waiting') {
          const i = wake === undefined ? -1 : this.waiters.indexOf(wake);
          if (i !== -1) this.waiters.splice(i, 1);
          state = 'done';
          leaveQueue();
          this.dispatch();
        }
        // running: the job's own settlement frees the slot.
      },
      run: <T>(job: () => Promise<T>, waitTimeoutMs?: number): Promise<T> => {
        if (state !== 'queued') return Promise.reject(new Error('reservation already used or released'));
        const start = (): Promise<T> => {
          leaveQueue();
          this.running++;
          state = 'running';
          let p: Promise<T>;
          try { p = job(); } catch (err) { p = Promise.reject(err); }
          return p.finally(finish);
        };
        if (this.running < this.concurrency && this.waiters.length === 0) return start();
        state = 'waiting';
        return new Promise<T>((resolve, reject) => {
          let timer: NodeJS.Timeout | undefined;
          wake = () => {
            if (timer !== undefined) clearTimeout(timer);
            start().then(resolve, reject);
          };
          this.waiters.push(wake);
          if (waitTimeoutMs !== undefined && waitTimeoutMs > 0) {
            timer = setTimeout(() => {
              const i = this.waiters.indexOf(wake!);
              if (i === -1) return;
              this.waiters.splice(i, 1);
              state = 'done';
              leaveQueue();
              reject(new PoolWaitTimeout());
            }, waitTimeoutMs);
          }
        });
      },
    };
  }

  private dispatch(): void {
    while (this.running < this.concurrency && this.waiters.length > 0) {
      const next = this.waiters.shift()!;
      next();
    }
  }
}
