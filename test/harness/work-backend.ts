import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in image backend for credits tests, in the test process: it reads the body,
 * then answers as the request's test headers say, so a test decides what the work
 * "took" and how the answer goes without running sharp:
 *   x-test-work: the x-sluice-work report to send (none without it)
 *   x-test-status: the status (default 200); x-test-delay-ms: wait first
 *   x-test-bytes: answer that many bytes of image/webp with a Content-Location (Accept: image/*)
 * Every answer carries a fresh result id, so a replayed answer is told from a new one.
 */
export interface WorkBackend {
  readonly url: string;
  /** Requests received, by path. */
  readonly received: Map<string, number>;
  close(): Promise<void>;
}

export async function startWorkBackend(): Promise<WorkBackend> {
  const received = new Map<string, number>();
  let seq = 0;
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    received.set(path, (received.get(path) ?? 0) + 1);
    let bytes = 0;
    req.on('data', (c: Buffer) => { bytes += c.length; });
    req.on('end', () => {
      const h = req.headers;
      const answer = (): void => {
        if (res.destroyed) return;
        const id = `r${++seq}-${process.pid}`;
        const status = Number(h['x-test-status'] ?? 200);
        const headers: Record<string, string> = {};
        if (typeof h['x-test-work'] === 'string') headers['x-sluice-work'] = h['x-test-work'];
        if (h['x-test-bytes'] !== undefined) {
          const body = Buffer.alloc(Number(h['x-test-bytes']), 7);
          res.writeHead(status, { ...headers, 'content-type': 'image/webp', 'content-location': `/v1/results/${id}`, 'content-length': body.length });
          res.end(body);
          return;
        }
        const body = JSON.stringify({ id, received_bytes: bytes, url: `/v1/results/${id}`, customer: h['x-sluice-customer'] });
        res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      };
      const delay = Number(h['x-test-delay-ms'] ?? 0);
      if (delay > 0) setTimeout(answer, delay);
      else answer();
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
