import { build, type Histogram } from 'hdr-histogram-js';

// What a generator worker reports for each request it sent, and the histogram shape
// every part of the tool shares (so histograms from different workers can be added).

export interface Sample {
  /** Index into the schedule. */
  readonly i: number;
  /** Index into the targets (0 = the main target, then each --compare URL). */
  readonly t: number;
  /** When the request was handed to the HTTP client, ms after the run's start. */
  readonly sent: number;
  /** Response head received (= end for errors). */
  readonly head: number;
  /** Response body finished, or the error seen. */
  readonly end: number;
  /** HTTP status; 0 when no response came (connection error, timeout). */
  readonly status: number;
  readonly error?: string;
  /** `error.code` of a JSON error body (429s only: which limit refused). */
  readonly code?: string;
  readonly rateLimit?: string;
  readonly rateLimitPolicy?: string;
  readonly retryAfter?: string;
  readonly backend?: string;
}

export interface WorkerGroup {
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly bodyFiles: readonly string[];
}

export interface WorkerInput {
  readonly targets: readonly string[];
  readonly idx: Uint32Array;
  readonly at: Float64Array;
  readonly group: Uint16Array;
  readonly key: Uint32Array;
  readonly variant: Uint8Array;
  /** groups[group][variant]: the request each kind of a group's requests sends. */
  readonly groups: readonly (readonly WorkerGroup[])[];
  /** keys[target][group][key]. */
  readonly keys: readonly (readonly (readonly string[])[])[];
  readonly connections: number;
  readonly timeoutMs: number;
  readonly lateMs: number;
  readonly backendHeader: string | undefined;
}

export type WorkerMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'batch'; readonly samples: readonly Sample[]; readonly sent: number; readonly late: number;
      /** No sample sent before this (ms after start) is still to come from this worker. */
      readonly watermark: number }
  | { readonly type: 'done'; readonly corrected: readonly string[]; readonly uncorrected: readonly string[]; readonly lateness: string;
      readonly loopLagP99Ms: number; readonly loopLagMaxMs: number; readonly sent: number; readonly late: number };

/** Latencies in microseconds, 1 µs to 1 hour, 3 significant digits. */
export function newHistogram(): Histogram {
  return build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
}

/** Absolute ms on a clock every thread shares (each thread's performance.now() has its own origin). */
export function clock(): number {
  return performance.timeOrigin + performance.now();
}

export function recordMs(h: Histogram, ms: number): void {
  h.recordValue(Math.max(1, Math.min(3_600_000_000, Math.round(ms * 1000))));
}
