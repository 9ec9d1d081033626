import { Client } from 'undici';

/**
 * The Prometheus text of a gateway's admin /metrics, on a connection of its own: a scrape
 * after a few idle seconds on a shared kept-alive connection can meet the server closing
 * it at that instant (its keep-alive timeout, on a busy machine where timers run late)
 * and fail with ECONNRESET.
 */
export async function scrapeMetrics(adminUrl: string): Promise<string> {
  const client = new Client(adminUrl);
  try {
    const res = await client.request({ method: 'GET', path: '/metrics' });
    if (res.statusCode !== 200) throw new Error(`/metrics answered ${res.statusCode}`);
    return await res.body.text();
  } finally {
    await client.close();
  }
}

/**
 * Sum of every sample of `name` whose labels include `labels` (0 when there is none,
 * which is how prom-client shows a labelled counter that never moved).
 */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (m === null || m[1] !== name) continue;
    const have: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) have[l[1]!] = l[2]!;
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

/**
 * The longest event-loop stall the gateway measured since the previous scrape of its
 * /metrics, in ms (prom-client's monitorEventLoopDelay, reset by every scrape; with
 * workers, the slowest worker's). Scrape once before a window to start it afresh.
 */
export function loopLagMaxMs(text: string): number {
  return metricValue(text, 'sluice_process_nodejs_eventloop_lag_max_seconds') * 1000;
}

/**
 * Limit decisions that waited past `budgetMs` plus two turns of the gateway's own event
 * loop at its slowest (`lagMs`, from loopLagMaxMs over the same window), by the
 * sluice_limit_decision_seconds histogram. DESIGN.md promises the store timeout "plus one
 * event-loop turn": a deadline timer that came due during a stalled turn runs when that
 * turn ends, and the verdict waits for the poll phase after it, so two turns bound what
 * this process's own lateness adds; what the store or a missing deadline adds is not
 * excused. The histogram's buckets are coarse, so the bound is rounded up to the next.
 * `since`: a scrape at the window's start, whose counts are taken off.
 */
export function decisionsOver(text: string, budgetMs: number, lagMs: number, since = ''): { over: number; waited: number; boundMs: number; le: string } {
  const count = (t: string, labels: Record<string, string> = {}, name = 'sluice_limit_decision_seconds_count'): number => (t === '' ? 0 : metricValue(t, name, labels));
  const waited = count(text) - count(since);
  const les = [...new Set([...text.matchAll(/^sluice_limit_decision_seconds_bucket\{[^}]*le="([^"]+)"/gm)].map((m) => m[1]!))];
  const boundMs = budgetMs + 2 * lagMs;
  const le = les.filter((l) => l !== '+Inf').map(Number).sort((a, b) => a - b).find((sec) => sec * 1000 >= boundMs);
  const bucket = (t: string): number => count(t, { le: String(le) }, 'sluice_limit_decision_seconds_bucket');
  const within = le === undefined ? waited : bucket(text) - bucket(since);
  return { over: waited - within, waited, boundMs, le: le === undefined ? '+Inf' : String(le) };
}
