import { EventEmitter, once } from 'node:events';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TestBackend {
  readonly url: string;
  /** performance.now() at which each request arrived, by its X-Request-Id. */
  readonly arrivals: Map<string, number>;
  /** Requests held open right now, and the most ever held at once. */
  held(): number;
  maxHeld(): number;
  /** Emits 'arrive' (request id) for every request. */
  readonly events: EventEmitter;
  /** Answers the oldest held request (200); false when none is held. */
  releaseOne(): boolean;
  releaseAll(): void;
  close(): Promise<void>;
}

/**
 * An upstream for limit tests, in the test process: answers at once with a small JSON
 * body, except paths under `holdPrefix`, which it holds open until released, so a test
 * decides when an in-flight request ends.
 */
export async function startTestBackend(holdPrefix = '/hold'): Promise<TestBackend> {
  const arrivals = new Map<string, number>();
  const events = new EventEmitter();
  events.setMaxListeners(0);
  const held: ServerResponse[] = [];
  let maxHeld = 0;
  const answer = (res: ServerResponse): void => {
    const body = '{"ok":true}';
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  const server = createServer((req, res) => {
    const id = String(req.headers['x-request-id'] ?? '');
    arrivals.set(id, performance.now());
    req.resume();
    if (req.url?.startsWith(holdPrefix)) {
      held.push(res);
      maxHeld = Math.max(maxHeld, held.length);
      res.once('close', () => { const i = held.indexOf(res); if (i !== -1) held.splice(i, 1); });
    } else {
      req.once('end', () => answer(res));
    }
    events.emit('arrive', id);
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    arrivals,
    held: () => held.length,
    maxHeld: () => maxHeld,
    events,
    releaseOne() {
      const res = held.shift();
      if (res === undefined) return false;
      answer(res);
      return true;
    },
    releaseAll() {
      for (const res of held.splice(0)) answer(res);
    },
    close: () => new Promise<void>((resolve) => {
      for (const res of held.splice(0)) res.destroy();
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

/** Polls `check` until it returns true or `timeoutMs` passes (for states that emit no event). */
export async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string, everyMs = 10): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
