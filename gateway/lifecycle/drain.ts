import { Server as NetServer } from 'node:net';
import type { Server, ServerResponse } from 'node:http';

/**
 * Graceful close of one HTTP server: stop accepting, let the requests already in flight
 * finish, and cut whatever is still open at the deadline.
 *
 * Keep-alive is the subtle part. A connection closed while the client is about to reuse
 * it fails a request that never reached us, so every response written once draining has
 * begun says `Connection: close`, and idle connections are only closed after a grace
 * (during a reload a busy client has by then reconnected to the replacement worker).
 */
export class Drain {
  private readonly open = new Set<ServerResponse>();
  private draining = false;

  /** Call for every request; the response is followed until it closes. */
  track(res: ServerResponse): void {
    if (this.draining) res.shouldKeepAlive = false;
    this.open.add(res);
    res.once('close', () => this.open.delete(res));
  }

  get inFlight(): number {
    return this.open.size;
  }

  /** Resolves with the number of requests cut at the deadline (0 when every one finished). */
  async close(server: Server, deadlineMs: number, idleGraceMs: number): Promise<number> {
    this.draining = true;
    for (const res of this.open) if (!res.headersSent) res.shouldKeepAlive = false;
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
    const cut = timedOut ? this.open.size : 0;
    if (timedOut) {
      server.closeAllConnections();
      // Upgraded sockets (WebSocket tunnels) are no longer the HTTP server's to close.
      for (const res of this.open) res.destroy();
      await closed;
    }
    // Stops Node's connection-checking timer, which only http.Server#close clears.
    server.close(() => {});
    return cut;
  }
}
