import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The minimal backend of the gateway-core milestone: it reads the whole request body
 * (counting, not keeping it) and answers with what it saw, so the gateway's headers,
 * streaming and balancing can be observed end to end. The image service replaced it in
 * `sluice-backend`; it lives on for the gateway's own tests, which need a backend that
 * reports what it received.
 */
export function startEchoBackend(host: string, port: number): Promise<Server> {
  // Named after the port it is bound to (not the one asked for: 0 means "any"), so
  // two backends on ephemeral ports can still be told apart in the echo.
  let name = `backend-${port}`;
  const server = createServer((req, res) => {
    let received = 0;
    req.on('data', (chunk: Buffer) => { received += chunk.length; });
    req.on('end', () => {
      const body = JSON.stringify({ backend: name, method: req.method, url: req.url, received_bytes: received, headers: req.headers });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  server.keepAliveTimeout = 60_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      name = `backend-${(server.address() as AddressInfo).port}`;
      resolve(server);
    });
  });
}
