import type { ServerResponse } from 'node:http';
import { bodyPending } from './request-body.js';

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
 * The answer says Connection: close when its head has not gone out yet: a client that
 * has sent its whole body by the time the answer is complete would otherwise take the
 * connection back into its pool and send its next request into the half-close. Node
 * ends such a response with the socket's destroySoon, which would close with the body
 * still arriving; on this socket it is the lingering close instead.
 *
 * Call before the response is ended; a request whose body is all in needs none of this.
 */
export function lingerClose(res: ServerResponse): void {
  const req = res.req;
  if (req === undefined || !bodyPending(req)) return;
  const socket = req.socket;
  req.unpipe();
  req.resume();
  if (!res.headersSent) res.setHeader('connection', 'close');
  let started = false;
  const linger = (): void => {
    if (started || socket.destroyed) return;
    started = true;
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
    if (socket.readableEnded) socket.once('finish', () => socket.destroy());
    else socket.once('end', () => socket.destroy());
    socket.end();
  };
  socket.destroySoon = linger;
  res.once('finish', linger);
}
