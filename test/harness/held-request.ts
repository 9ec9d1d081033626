import { request, type IncomingHttpHeaders } from 'node:http';

export interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

export interface SentRequest {
  /** The answer; rejects when the request was aborted or the connection failed. */
  readonly done: Promise<Answer>;
  /** Closes this request's connection, as a client that gives up would. */
  abort(): void;
}

/**
 * A GET on a connection of its own (no agent), so requests a server holds open never
 * queue behind one another and aborting one closes exactly that connection.
 */
export function sendOwn(baseUrl: string, path: string, headers: Record<string, string> = {}): SentRequest {
  const req = request(new URL(path, baseUrl), { method: 'GET', headers, agent: false });
  const done = new Promise<Answer>((resolve, reject) => {
    req.once('error', reject);
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('error', reject);
      res.once('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
  });
  // An aborted request's rejection is expected; callers that care await `done` themselves.
  done.catch(() => {});
  req.end();
  return { done, abort: () => req.destroy() };
}

/** What Holder needs of a backend that holds requests open (test-backend.ts). */
interface HoldingBackend {
  readonly events: { on(e: 'arrive', f: () => void): unknown; off(e: 'arrive', f: () => void): unknown };
  releaseAll(): void;
}

/**
 * Drives requests that a holding backend keeps open: `hold` returns once the backend
 * has them (an event, with a deadline), so a test knows they took their slot.
 */
export class Holder {
  private arrived = 0;
  private readonly onArrive = (): void => { this.arrived++; };
  readonly pending: SentRequest[] = [];

  constructor(private readonly baseUrl: string, private readonly backend: HoldingBackend) {
    backend.events.on('arrive', this.onArrive);
  }

  async hold(path: string, headers: Record<string, string>, n: number, timeoutMs = 30_000): Promise<SentRequest[]> {
    const want = this.arrived + n;
    const sent = Array.from({ length: n }, () => sendOwn(this.baseUrl, path, headers));
    this.pending.push(...sent);
    const deadline = performance.now() + timeoutMs;
    while (this.arrived < want) {
      if (performance.now() > deadline) throw new Error(`only ${n - (want - this.arrived)} of ${n} requests on ${path} reached the backend in ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 5));
    }
    return sent;
  }

  /** Answers everything still held, aborts what is left, stops counting arrivals. */
  close(): void {
    this.backend.events.off('arrive', this.onArrive);
    this.backend.releaseAll();
    for (const p of this.pending) p.abort();
  }
}

/** Several holding backends seen as one (an upstream with several servers). */
export function holdingAcross(backends: readonly HoldingBackend[]): HoldingBackend {
  return {
    events: {
      on: (e, f) => { for (const b of backends) b.events.on(e, f); },
      off: (e, f) => { for (const b of backends) b.events.off(e, f); },
    },
    releaseAll: () => { for (const b of backends) b.releaseAll(); },
  };
}
