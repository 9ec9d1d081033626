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
