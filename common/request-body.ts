import type { IncomingMessage } from 'node:http';

/**
 * True while part of the request body has yet to arrive. `complete` alone is not enough:
 * Node sets it only after the 'request' event, even for a request with no body at all.
 */
export function bodyPending(req: IncomingMessage): boolean {
  if (req.complete) return false;
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const cl = req.headers['content-length'];
  return cl !== undefined && Number(cl) > 0;
}
