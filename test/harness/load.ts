import { Agent, request } from 'undici';

const REQUEST_TIMEOUT_MS = 10_000;

export interface LoadResult {
  readonly ok: number;
  readonly failed: number;
  /** The first few failures, as status codes or error messages, for the assertion message. */
  readonly failures: string[];
  /** Answers carrying each value of `watchHeader` (when given). */
  readonly seen: Map<string, number>;
}

export interface Load {
  /** Ends the loops after their current request and resolves with the counts. */
  stop(): Promise<LoadResult>;
  /** Requests answered so far (successes and failures). */
  done(): number;
}

/**
 * `concurrency` loops of back-to-back GETs on keep-alive connections, each counted as ok
 * (200) or failed (any other status, or an error), until stop(). A bounded load, like a
 * client's: every loop has at most one request in flight. `fresh` opens a new connection
 * for every request; `tls` gives an https URL's trusted CA (PEM) and SNI name.
 */
export function startLoad(url: string, opts: { concurrency: number; headers?: Record<string, string>; watchHeader?: string; fresh?: boolean; tls?: { ca: string; servername?: string } }): Load {
  // Bounded, so a request the gateway never answers fails (and is counted) instead of
  // holding its loop, stop(), the test and the whole suite until undici's 5-minute default.
  const agent = new Agent({ connections: opts.concurrency, keepAliveTimeout: 10_000, headersTimeout: REQUEST_TIMEOUT_MS, bodyTimeout: REQUEST_TIMEOUT_MS,
    ...(opts.tls === undefined ? {} : { connect: opts.tls }) });
  let running = true;
  let ok = 0;
  let failed = 0;
  const failures: string[] = [];
  const seen = new Map<string, number>();
  const fail = (why: string): void => { failed++; if (failures.length < 10) failures.push(why); };
  const loop = async (): Promise<void> => {
    while (running) {
      try {
        const res = await request(url, { dispatcher: agent, headers: opts.headers, reset: opts.fresh === true });
        if (res.statusCode === 200) { ok++; await res.body.dump(); } else {
          // The error code says which failure it was (a 503 is unavailable or overloaded).
          const code = /"code":"([a-z_]+)"/.exec(await res.body.text())?.[1];
          fail(`status ${res.statusCode}${code === undefined ? '' : ` ${code}`}`);
        }
        if (opts.watchHeader !== undefined) {
          const v = String(res.headers[opts.watchHeader]);
          seen.set(v, (seen.get(v) ?? 0) + 1);
        }
      } catch (err) {
        fail((err as Error).message);
      }
    }
  };
  const loops = Array.from({ length: opts.concurrency }, loop);
  return {
    done: () => ok + failed,
    async stop() {
      running = false;
      await Promise.all(loops);
      await agent.close();
      return { ok, failed, failures, seen };
    },
  };
}
