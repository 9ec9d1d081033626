import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface RawUpstream {
  readonly port: number;
  /** http://127.0.0.1:<port>, usable as an upstream target. */
  readonly url: string;
  /** Connections accepted so far. */
  readonly accepted: () => number;
  close(): Promise<void>;
}

/**
 * A TCP server on an ephemeral loopback port that hands each connection to `onSocket`,
 * for upstreams that misbehave below HTTP (never answer, reset, send garbage). Every
 * socket is tracked so close() never waits on one a test left hanging.
 */
export function startRawUpstream(onSocket: (socket: Socket) => void): Promise<RawUpstream> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server: Server = createServer((s) => {
    accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    // A reset from the gateway side is expected in these scenarios, not a test failure.
    s.on('error', () => {});
    onSocket(s);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        port,
        url: `http://127.0.0.1:${port}`,
        accepted: () => accepted,
        close: () => new Promise<void>((done) => {
          for (const s of sockets) s.destroy();
          server.close(() => done());
        }),
      });
    });
  });
}

/** Resolves once `socket` has received a complete request head (up to the blank line). */
export function readHead(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (c: Buffer): void => {
      buf += c.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end !== -1) { cleanup(); resolve(buf.slice(0, end)); }
    };
    const onClose = (): void => { cleanup(); reject(new Error('connection closed before a request head arrived')); };
    const cleanup = (): void => { socket.off('data', onData); socket.off('close', onClose); };
    socket.on('data', onData);
    socket.on('close', onClose);
  });
}
