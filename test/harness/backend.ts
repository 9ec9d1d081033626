import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startEchoBackend } from './echo-backend.js';

/** The echo backend in-process on an ephemeral loopback port. */
export async function startBackend(): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const server = await startEchoBackend('127.0.0.1', 0);
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    server,
    url,
    close: () => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  };
}
