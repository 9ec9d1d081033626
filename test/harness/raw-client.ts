import { once } from 'node:events';
import { connect, type Socket } from 'node:net';

/**
 * A hand-driven HTTP/1.1 client connection to 127.0.0.1, for conversations rawRequest
 * cannot have: trickling bytes, waiting for an interim response before sending a body,
 * streaming until the server answers. Reads are collected as latin1 text.
 */
export class RawClient {
  private data = '';
  private closedAt: number | undefined;
  private firstError: string | undefined;
  private endedAt: number | undefined;
  private readonly waiters = new Set<() => void>();
  readonly startedAt = performance.now();

  private constructor(readonly socket: Socket) {
    socket.on('data', (c: Buffer) => { this.data += c.toString('latin1'); this.wake(); });
    // The server cutting us off (reset, broken pipe) is an outcome the tests look at, not an error.
    socket.on('error', (err: NodeJS.ErrnoException) => { this.firstError ??= err.code ?? err.message; this.wake(); });
    socket.on('end', () => { this.endedAt ??= performance.now(); this.wake(); });
    socket.on('close', () => { this.closedAt ??= performance.now(); this.wake(); });
  }

  /**
   * With allowHalfOpen the client can go on sending after the server has half-closed
   * (as an uploader that has not noticed the answer yet does); otherwise Node ends our
   * side too when the server's FIN arrives.
   */
  static async connect(port: number, opts: { allowHalfOpen?: boolean } = {}): Promise<RawClient> {
    const s = connect({ port, host: '127.0.0.1', allowHalfOpen: opts.allowHalfOpen ?? false });
    await once(s, 'connect');
    return new RawClient(s);
  }

  /** Everything received so far. */
  get raw(): string { return this.data; }
  get closed(): boolean { return this.closedAt !== undefined; }
  /** The server has ended its side (FIN); with allowHalfOpen ours may still be open. */
  get ended(): boolean { return this.endedAt !== undefined || this.closed; }
  /** The code of the first socket error (ECONNRESET, EPIPE, ...), if any. */
  get error(): string | undefined { return this.firstError; }
  /** Milliseconds from connect until the server closed the connection (undefined while open). */
  get closedAfterMs(): number | undefined { return this.closedAt === undefined ? undefined : this.closedAt - this.startedAt; }

  /**
   * Writes unless the connection is gone; resolves once the socket can take more, as
   * soon as the server says something or closes (so an uploader can stop and look), or
   * after `stallMs` of a server that neither reads nor answers. Returns false when the
   * connection is gone or stalled.
   */
  async write(chunk: string | Buffer, stallMs = 5000): Promise<boolean> {
    if (this.closed || this.socket.destroyed || !this.socket.writable) return false;
    if (this.socket.write(chunk)) return true;
    const drained = await new Promise<boolean>((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        this.socket.off('drain', onDrain);
        this.waiters.delete(onWake);
        resolve(ok);
      };
      const onDrain = (): void => done(true);
      const onWake = (): void => done(true);
      const timer = setTimeout(() => done(false), stallMs);
      this.socket.once('drain', onDrain);
      this.waiters.add(onWake);
    });
    return drained && !this.closed;
  }

  /** Resolves true once pred(raw) holds, false if the connection closed first or timeoutMs passed. */
  waitFor(pred: (raw: string) => boolean, timeoutMs: number): Promise<boolean> {
    if (pred(this.data)) return Promise.resolve(true);
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const check = (): void => {
        if (pred(this.data)) finish(true);
        else if (this.closed) finish(false);
      };
      const finish = (v: boolean): void => { clearTimeout(timer); this.waiters.delete(check); resolve(v); };
      const timer = setTimeout(() => finish(false), timeoutMs);
      this.waiters.add(check);
    });
  }

  /** Resolves true once the server has closed the connection, false after timeoutMs. */
  waitClosed(timeoutMs: number): Promise<boolean> {
    return this.waitFor(() => this.closed, timeoutMs);
  }

  /** Resolves true once the server has ended its side of the connection, false after timeoutMs. */
  waitEnded(timeoutMs: number): Promise<boolean> {
    return this.waitFor(() => this.ended, timeoutMs);
  }

  destroy(): void { this.socket.destroy(); }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}

/**
 * Sends `frame` over and over (up to `maxBytes`) until the server says something or
 * closes, then `afterAnswer` frames more, as an uploader that has not looked at the answer
 * yet would. Returns the bytes sent before the answer. Use a client connected with
 * allowHalfOpen, so the extra frames go out even after the server's FIN.
 */
export async function uploadUntilAnswered(c: RawClient, frame: Buffer, maxBytes: number, afterAnswer = 16): Promise<number> {
  let sent = 0;
  while (sent < maxBytes && c.raw === '' && !c.closed) {
    if (!await c.write(frame)) break;
    sent += frame.length;
  }
  for (let i = 0; i < afterAnswer && !c.closed; i++) {
    if (!await c.write(frame)) break;
  }
  return sent;
}
