import type { Histogram } from 'hdr-histogram-js';
import type { Sample } from './samples.js';
import { newHistogram, recordMs } from './samples.js';

// Live progress: a bar redrawn in place on a TTY, otherwise one line every few seconds
// (CI logs): sent and answered per second, errors, p99 so far, over-admissions so far.

const TTY_MS = 250;
const LINE_MS = 5000;

export interface ProgressSource {
  readonly durationMs: number;
  readonly intendedAt: (i: number) => number;
  readonly overAdmitted: () => number;
}

export class Progress {
  private sent = 0;
  private answered = 0;
  private errors = 0;
  private lastSent = 0;
  private lastAnswered = 0;
  private lastAt = performance.now();
  private readonly started = performance.now();
  private readonly hist: Histogram = newHistogram();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly src: ProgressSource, private readonly out: NodeJS.WriteStream = process.stderr) {
    this.timer = setInterval(() => this.draw(), out.isTTY ? TTY_MS : LINE_MS);
  }

  /** Answers as they come; sends are counted from them plus the worker's running total. */
  onBatch(samples: readonly Sample[], sentSoFar: number): void {
    this.sent = Math.max(this.sent, sentSoFar);
    for (const s of samples) {
      this.answered++;
      if (s.status === 0 || s.status >= 500) this.errors++;
      recordMs(this.hist, s.head - this.src.intendedAt(s.i));
    }
  }

  private line(): string {
    const now = performance.now();
    const dt = Math.max(0.001, (now - this.lastAt) / 1000);
    const sentRate = (this.sent - this.lastSent) / dt;
    const ansRate = (this.answered - this.lastAnswered) / dt;
    this.lastSent = this.sent;
    this.lastAnswered = this.answered;
    this.lastAt = now;
    const p99 = this.hist.totalCount === 0 ? 0 : this.hist.getValueAtPercentile(99) / 1000;
    return `sent ${sentRate.toFixed(0)}/s  answered ${ansRate.toFixed(0)}/s  errors ${this.errors}  p99 ${p99.toFixed(1)} ms  over-admitted ${this.src.overAdmitted()}`;
  }

  private draw(): void {
    const frac = Math.min(1, (performance.now() - this.started) / Math.max(1, this.src.durationMs));
    if (this.out.isTTY) {
      const width = 24;
      const fill = Math.round(frac * width);
      this.out.write(`\r[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${(frac * 100).toFixed(0).padStart(3)}%  ${this.line()}\x1b[K`);
    } else {
      this.out.write(`${((performance.now() - this.started) / 1000).toFixed(0)} s: ${this.line()}\n`);
    }
  }

  stop(): void {
    clearInterval(this.timer);
    if (this.out.isTTY) this.out.write('\n');
  }
}
