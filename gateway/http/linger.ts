import type { ServerResponse } from 'node:http';

/** How long a connection keeps draining a request body it has already answered. */
export const LINGER_MS = 2000;

/**
 * Lingering close (RFC 9112 §9.6; nginx's lingering_close) for a response that goes out
 * while the client is still sending its body: an error before the body was read, or an
 * upstream that answered early. Closing at once would make the kernel reset the
 * connection on the client's next bytes, and a reset can destroy the response before
 * the client reads it. Instead the rest of the body is read and thrown away, the
 * connection is half-closed once the response is out (the client sees the answer, then
 * end of stream), and destroyed when the client closes or after LINGER_MS.
 *
 * Call before the response is ended. Node's own Connection: close would destroy the
 * socket as soon as the response is flushed, so the response stays keep-alive as far as
 * Node knows and the half-close here is what ends it.
 */
export function lingerClose(res: ServerResponse): void {
  const req = res.req;
  const socket = req.socket;
  req.unpipe();
  req.resume();
  res.once('finish', () => {
    if (socket.destroyed) return;
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
    socket.once('end', () => socket.destroy());
    socket.end();
  });
}
