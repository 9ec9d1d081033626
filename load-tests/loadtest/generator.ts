import { Worker } from 'node:worker_threads';
import { decodeFromCompressedBase64, type Histogram } from 'hdr-histogram-js';
import type { Schedule } from './schedule.js';
import { clock, newHistogram, type Sample, type WorkerGroup, type WorkerInput, type WorkerMessage } from './samples.js';
import type { GeneratorLimits } from './scenario.js';

// Splits the schedule over worker threads (request k to worker k mod W, so each keeps
// the same profile), starts them on one shared clock, and merges what they report.

const WORKER = new URL('./generator-worker.js', import.meta.url);
/** The first send is due this long after every worker said it was ready. */
const START_DELAY_MS = 50;

export interface GeneratorResult {
  readonly samples: Sample[];
  /** Per target: latency from the intended send time, µs. */
  readonly corrected: Histogram[];
  /** Per target: latency from the actual send time, µs. */
  readonly uncorrected: Histogram[];
  /** How late each send left, µs. */
  readonly lateness: Histogram;
  readonly sent: number;
  readonly late: number;
  readonly loopLagP99Ms: number;
  readonly loopLagMaxMs: number;
  /** CPU the whole generator process used, ms (every thread), and the run's wall time. */
  readonly cpuMs: number;
  readonly wallMs: number;
}

export interface GeneratorRun {
  readonly targets: readonly string[];
  readonly schedule: Schedule;
  /** The requests of each group, by variant (Group.mix). */
  readonly groups: readonly (readonly WorkerGroup[])[];
  readonly keys: readonly (readonly (readonly string[])[])[];
  readonly limits: GeneratorLimits;
  readonly backendHeader: string | undefined;
  /**
   * Called with each batch as it arrives. `watermark`: every sample sent before it is in;
   * `sent`: requests sent so far by all workers.
   */
  readonly onBatch?: (samples: readonly Sample[], watermark: number, sent: number) => void;
  /** Called once every worker is ready, with the moment (clock()) the schedule's t = 0 falls on. */
  readonly onStart?: (startAt: number) => void;
}

export async function runGenerator(run: GeneratorRun): Promise<GeneratorResult> {
  const w = run.limits.workers;
  const cpu0 = process.cpuUsage();
  let startAt = 0;
  const workers: Worker[] = [];
  let ready = 0;
  const samples: Sample[] = [];
  const marks = new Array<number>(w).fill(0);
  const sentBy = new Array<number>(w).fill(0);
  const done: Extract<WorkerMessage, { type: 'done' }>[] = [];
  const connections = Math.max(1, Math.ceil(run.limits.connections / w));
  await Promise.all(Array.from({ length: w }, (_, k) => new Promise<void>((resolve, reject) => {
    const idx: number[] = [];
    for (let i = k; i < run.schedule.at.length; i += w) idx.push(i);
    const input: WorkerInput = {
      targets: run.targets,
      idx: Uint32Array.from(idx),
      at: Float64Array.from(idx, (i) => run.schedule.at[i]!),
      group: Uint16Array.from(idx, (i) => run.schedule.group[i]!),
      key: Uint32Array.from(idx, (i) => run.schedule.key[i]!),
      variant: Uint8Array.from(idx, (i) => run.schedule.variant[i]!),
      groups: run.groups, keys: run.keys, connections,
      timeoutMs: run.limits.timeoutMs, lateMs: run.limits.lateMs, backendHeader: run.backendHeader,
    };
    const worker = new Worker(WORKER, { workerData: input });
    workers.push(worker);
    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'ready') {
        if (++ready === w) {
          startAt = clock() + START_DELAY_MS;
          for (const x of workers) x.postMessage({ startAt });
          run.onStart?.(startAt);
        }
      } else if (m.type === 'batch') {
        for (const s of m.samples) samples.push(s);
        marks[k] = m.watermark;
        sentBy[k] = m.sent;
        run.onBatch?.(m.samples, Math.min(...marks), sentBy.reduce((a, b) => a + b, 0));
      } else {
        done.push(m);
        marks[k] = Infinity;
      }
    });
    worker.once('error', reject);
    worker.once('exit', (code) => (done.length > 0 || code === 0 ? resolve() : reject(new Error(`generator worker ${k} exited with ${code}`))));
  })));
  const cpu = process.cpuUsage(cpu0);
  const merge = (pick: (d: (typeof done)[number]) => readonly string[]): Histogram[] => run.targets.map((_, t) => {
    const h = newHistogram();
    for (const d of done) h.add(decodeFromCompressedBase64(pick(d)[t]!));
    return h;
  });
  const lateness = newHistogram();
  for (const d of done) lateness.add(decodeFromCompressedBase64(d.lateness));
  return {
    samples,
    corrected: merge((d) => d.corrected),
    uncorrected: merge((d) => d.uncorrected),
    lateness,
    sent: done.reduce((a, d) => a + d.sent, 0),
    late: done.reduce((a, d) => a + d.late, 0),
    loopLagP99Ms: Math.max(...done.map((d) => d.loopLagP99Ms)),
    loopLagMaxMs: Math.max(...done.map((d) => d.loopLagMaxMs)),
    cpuMs: (cpu.user + cpu.system) / 1000,
    wallMs: clock() - startAt,
  };
}
