import { Server as NetServer, type Socket } from 'node:net';
import type { Server, ServerResponse } from 'node:http';

/**
 * Graceful close of one HTTP server: stop accepting, let the requests already in flight
 * finish, and cut whatever is still open at the deadline.
 *
 * Keep-alive is the subtle part. A connection closed while the client is about to reuse
 * it fails a request that never reached us, so every response written once draining has
 * begun says `Connection: close`, and idle connections are only closed after a grace
 * (during a reload a busy client has by then reconnected to the replacement worker).
 *
 * The responses in flight sit in numbered slots that finished ones leave free for the
 * next, rather than in a Set: a Set that gains and loses an entry per request keeps every
 * response alive past a young-generation collection (load-tests/PROFILE.md), and costs a
 * listener per request besides. The caller hands the slot back when the response closes.
 */
export class Drain {
  private readonly slots: (ServerResponse | undefined)[] = [];
  private readonly free: number[] = [];
  private open = 0;
  private draining = false;

  /** Call for every request; returns the slot to give back (untrack) once the response closed. */
  track(res: ServerResponse): number {
    if (this.draining) res.shouldKeepAlive = false;
    const slot = this.free.length > 0 ? this.free.pop()! : this.slots.length;
    this.slots[slot] = res;
    this.open++;
    return slot;
  }

  untrack(slot: number): void {
    this.slots[slot] = undefined;
    this.free.push(slot);
    this.open--;
  }

  get inFlight(): number {
    return this.open;
  }

  /** The response in flight on this connection, if any (looked up only for a client error, so a scan will do). */
  on(socket: Socket): ServerResponse | undefined {
    for (const res of this.slots) if (res !== undefined && res.req.socket === socket) return res;
    return undefined;
  }

  /** Resolves with the number of requests cut at the deadline (0 when every one finished). */
  async close(server: Server, deadlineMs: number, idleGraceMs: number): Promise<number> {
    this.draining = true;
    for (const res of this.slots) if (res !== undefined && !res.headersSent) res.shouldKeepAlive = false;
    // http.Server#close also closes idle keep-alive connections at once (Node >= 19); the
    // plain net close only stops accepting, which lets the grace above apply.
    const closed = new Promise<void>((resolve) => NetServer.prototype.close.call(server, () => resolve()));
    let sweep: NodeJS.Timeout | undefined;
    const startSweep = (): void => {
      server.closeIdleConnections();
      sweep = setInterval(() => server.closeIdleConnections(), 100);
    };
    const grace = idleGraceMs > 0 ? setTimeout(startSweep, Math.min(idleGraceMs, deadlineMs)) : undefined;
    if (grace === undefined) startSweep();
    let deadline: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      closed.then(() => false),
      new Promise<boolean>((resolve) => { deadline = setTimeout(() => resolve(true), deadlineMs); }),
    ]);
    clearTimeout(grace);
    clearTimeout(deadline);
    clearInterval(sweep);
    const cut = timedOut ? this.open : 0;
    if (timedOut) {
      server.closeAllConnections();
      // Upgraded sockets (WebSocket tunnels) are no longer the HTTP server's to close.
      for (const res of this.slots) res?.destroy();
      await closed;
    }
    // Stops Node's connection-checking timer, which only http.Server#close clears.
    server.close(() => {});
    return cut;
  }
}
