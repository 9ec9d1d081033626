import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { encodeIntoCompressedBase64 } from 'hdr-histogram-js';
import { Pool, type Dispatcher } from 'undici';
import { clock, newHistogram, recordMs, type Sample, type WorkerInput, type WorkerMessage } from './samples.js';

// One generator thread: sends its share of the schedule at the intended times, never
// waiting for an answer before the next send, and reports every answer in batches.

const BATCH_MS = 200;
/** Under this many ms to the next send, yield with setImmediate: setTimeout cannot wait less than 1 ms. */
const SPIN_MS = 1;

const input = workerData as WorkerInput;
const post = (m: WorkerMessage): void => parentPort!.postMessage(m);
const n = input.at.length;
const pools = input.targets.map((t) => new Pool(t, {
  connections: input.connections,
  pipelining: 1,
  headersTimeout: input.timeoutMs,
  bodyTimeout: input.timeoutMs,
  // undici's default idle keep-alive (4 s, or less when the server says so): holding an
  // idle connection longer than the server does races its close and fails the request.
}));
const bodies = input.groups.map((variants) => variants.map((g) => g.bodyFiles.map((f) => readFileSync(f))));
const corrected = input.targets.map(newHistogram);
const uncorrected = input.targets.map(newHistogram);
const lateness = newHistogram();
const lag = monitorEventLoopDelay({ resolution: 10 });
lag.enable();

let batch: Sample[] = [];
let sent = 0;
let late = 0;
let answered = 0;
let expected = 0;
let next = 0;
/** Send times (ms after start) of the requests still waiting for an answer. */
const outstanding = new Map<number, number>();
let seq = 0;

function header(h: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

async function fire(j: number, target: number, now: number): Promise<void> {
  const i = input.idx[j]!;
  const gi = input.group[j]!;
  const v = input.variant[j]!;
  const g = input.groups[gi]![v]!;
  const headers: Record<string, string> = { ...g.headers, 'x-api-key': input.keys[target]![gi]![input.key[j]!]! };
  const files = bodies[gi]![v]!;
  const body = files.length === 0 ? undefined : files[i % files.length];
  const intended = input.at[j]!;
  const id = seq++;
  outstanding.set(id, now);
  let s: Sample;
  try {
    const res = await pools[target]!.request({ origin: input.targets[target], path: g.path, method: g.method as Dispatcher.HttpMethod, headers, body });
    const head = clock() - startAt;
    let code: string | undefined;
    if (res.statusCode === 429) {
      // Which limit refused it: the oracle judges the reason, and Retry-After against it.
      const text = await res.body.text();
      try { code = (JSON.parse(text) as { error?: { code?: string } }).error?.code; } catch { code = undefined; }
    } else {
      await res.body.dump({ limit: Number.MAX_SAFE_INTEGER });
    }
    const end = clock() - startAt;
    s = {
      i, t: target, sent: now, head, end, status: res.statusCode, code,
      rateLimit: header(res.headers, 'ratelimit'), rateLimitPolicy: header(res.headers, 'ratelimit-policy'),
      retryAfter: header(res.headers, 'retry-after'),
      backend: input.backendHeader === undefined ? undefined : header(res.headers, input.backendHeader),
    };
  } catch (err) {
    const end = clock() - startAt;
    s = { i, t: target, sent: now, head: end, end, status: 0, error: (err as { code?: string }).code ?? (err as Error).message };
  }
  outstanding.delete(id);
  // Corrected: from the intended send time, so a stalled target shows every request it
  // held back. Uncorrected: from the actual send, what a closed-loop tool would report.
  recordMs(corrected[target]!, s.head - intended);
  recordMs(uncorrected[target]!, s.head - now);
  batch.push(s);
  answered++;
  if (next >= n && answered === expected) finish();
}

function watermark(): number {
  let w = next < n ? input.at[next]! : Infinity;
  for (const t of outstanding.values()) if (t < w) w = t;
  return w;
}

function flush(): void {
  if (batch.length === 0 && next < n) return;
  post({ type: 'batch', samples: batch, sent, late, watermark: watermark() });
  batch = [];
}

const flusher = setInterval(flush, BATCH_MS);

function tick(): void {
  let now = clock() - startAt;
  while (next < n && input.at[next]! <= now) {
    const lateBy = now - input.at[next]!;
    recordMs(lateness, lateBy);
    if (lateBy > input.lateMs) late++;
    // Every target gets the same request at the same moment; who goes first rotates.
    for (let k = 0; k < pools.length; k++) {
      const target = (next + k) % pools.length;
      sent++;
      expected++;
      void fire(next, target, now);
    }
    next++;
    now = clock() - startAt;
  }
  if (next >= n) { if (answered === expected) finish(); return; }
  const wait = input.at[next]! - now;
  if (wait < SPIN_MS) setImmediate(tick);
  else setTimeout(tick, Math.floor(wait));
}

let finished = false;
function finish(): void {
  if (finished) return;
  finished = true;
  clearInterval(flusher);
  flush();
  lag.disable();
  post({
    type: 'done',
    corrected: corrected.map((h) => encodeIntoCompressedBase64(h)),
    uncorrected: uncorrected.map((h) => encodeIntoCompressedBase64(h)),
    lateness: encodeIntoCompressedBase64(lateness),
    loopLagP99Ms: lag.percentile(99) / 1e6,
    loopLagMaxMs: lag.max / 1e6,
    sent,
    late,
  });
  void Promise.all(pools.map((p) => p.close())).then(() => process.exit(0));
}

let startAt = 0;
// Ready once the pools, bodies and histograms exist; the coordinator then names one
// start time for every worker, so thread start-up on a busy host is not counted as lateness.
parentPort!.once('message', (m: { startAt: number }) => {
  startAt = m.startAt;
  setTimeout(tick, Math.max(0, Math.floor((input.at[0] ?? 0) + startAt - clock())));
});
post({ type: 'ready' });
