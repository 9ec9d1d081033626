import type { IncomingMessage } from 'node:http';
import { bodyPending } from './request-body.js';

/** The slowest request body a server accepts (server.min_body_rate and its window). */
export interface BodyRate {
  /** Bytes per second, averaged over windowMs; 0 turns the check off. */
  readonly bytesPerSecond: number;
  readonly windowMs: number;
}

export const DEFAULT_BODY_RATE: BodyRate = Object.freeze({ bytesPerSecond: 500, windowMs: 10_000 });

/**
 * Calls onSlow once if the request body arrives slower than `rate` over a window, as
 * Apache's mod_reqtimeout MinRate does (nginx's client_body_timeout only bounds the gap
 * between two reads, which a byte a second never exceeds). A body trickled at 1 byte/s
 * would otherwise hold its connection until the whole-request timeout, for almost no
 * cost to the sender.
 *
 * Only the client's part is timed: while the body waits unread on this side (paused for
 * an upstream that reads slowly, or buffered while an earlier stage decides), the window
 * starts again, so backpressure from behind is never blamed on the client.
 */
export function watchBodyRate(req: IncomingMessage, rate: BodyRate, onSlow: (got: number, ms: number) => void): () => void {
  if (rate.bytesPerSecond <= 0 || !bodyPending(req)) return () => {};
  const socket = req.socket;
  let windowStart = performance.now();
  let base = socket.bytesRead;
  const tick = setInterval(() => {
    if (!bodyPending(req) || socket.destroyed) { stop(); return; }
    const now = performance.now();
    if (req.readableFlowing === false || req.readableLength >= req.readableHighWaterMark) {
      windowStart = now;
      base = socket.bytesRead;
      return;
    }
    const ms = now - windowStart;
    if (ms < rate.windowMs) return;
    const got = socket.bytesRead - base;
    if (got * 1000 < rate.bytesPerSecond * ms) { stop(); onSlow(got, ms); return; }
    windowStart = now;
    base = socket.bytesRead;
  }, Math.max(10, Math.min(1000, rate.windowMs / 4)));
  tick.unref();
  const stop = (): void => clearInterval(tick);
  req.once('close', stop);
  return stop;
}
