import { Pool } from 'undici';
import type { Sample } from '../../gateway/loadtest/samples.js';

// The fault harness's load generator, run on a host of its own:
//   node dist/load-tests/faults/client.js '<json ClientJob>'
// Open loop: request i is sent at i / rate seconds whatever came back before, to the
// targets in turn, with the job's keys in turn. Prints one JSON line per answer (a
// loadtest Sample plus the key index `k`), after a first line with the epoch ms that
// t = 0 falls on (every namespace shares this machine's clock), and a last `{"done":…}`.

export interface ClientJob {
  readonly targets: readonly string[];
  readonly path: string;
  readonly keys: readonly string[];
  readonly ratePerS: number;
  readonly durationMs: number;
  readonly connections: number;
  readonly timeoutMs: number;
  /** Request i carries `x-request-id: <tag>-<i>`, so the gateways' access logs say which process answered it. */
  readonly tag: string;
}

export type ClientLine = { readonly start: number } | (Sample & { readonly k: number }) | { readonly done: number };

const job = JSON.parse(process.argv[2] ?? '{}') as ClientJob;
const pools = job.targets.map((t) => new Pool(t, { connections: job.connections, pipelining: 1, headersTimeout: job.timeoutMs, bodyTimeout: job.timeoutMs, connectTimeout: job.timeoutMs }));
const origin = performance.now();
const at = (): number => performance.now() - origin;
const out = (l: ClientLine): void => { process.stdout.write(`${JSON.stringify(l)}\n`); };
out({ start: performance.timeOrigin + origin });

const total = Math.floor(job.ratePerS * job.durationMs / 1000);
let answered = 0;
let next = 0;

async function one(i: number): Promise<void> {
  const t = i % pools.length;
  const k = i % job.keys.length;
  const sent = at();
  let head = sent;
  try {
    const res = await pools[t]!.request({ method: 'GET', path: job.path, headers: { 'x-api-key': job.keys[k]!, 'x-request-id': `${job.tag}-${i}` } });
    head = at();
    const text = await res.body.text();
    const h = res.headers;
    const str = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v.join(', ') : v);
    let code: string | undefined;
    if (res.statusCode === 429 || res.statusCode >= 500) { try { code = (JSON.parse(text) as { error?: { code?: string } }).error?.code; } catch { /* not JSON */ } }
    out({ i, t, k, sent, head, end: at(), status: res.statusCode, ...(code === undefined ? {} : { code }),
      rateLimit: str(h['ratelimit']), rateLimitPolicy: str(h['ratelimit-policy']), retryAfter: str(h['retry-after']) });
  } catch (err) {
    out({ i, t, k, sent, head, end: at(), status: 0, error: (err as { code?: string }).code ?? (err as Error).message });
  }
  answered++;
}

await new Promise<void>((resolve) => {
  const tick = (): void => {
    const now = at();
    while (next < total && next * 1000 / job.ratePerS <= now) {
      const p = one(next++);
      void p.then(() => { if (answered === total) resolve(); });
    }
    if (next < total) setTimeout(tick, Math.max(0, next * 1000 / job.ratePerS - at()));
  };
  tick();
  if (total === 0) resolve();
});
out({ done: answered });
await Promise.all(pools.map((p) => p.close()));
