#!/usr/bin/env node
import type { AddressInfo } from 'node:net';
import { startDemoBackend } from './demo-backend.js';

const args = process.argv.slice(2);
const i = args.indexOf('--port');
const port = i === -1 ? 7001 : Number(args[i + 1]);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write('usage: sluice-backend --port N\n');
  process.exit(2);
}
const host = process.env.SLUICE_BACKEND_HOST ?? '127.0.0.1';
const server = await startDemoBackend(host, port);
const { port: bound } = server.address() as AddressInfo;
process.stdout.write(`${JSON.stringify({ msg: 'backend listening', port: bound })}\n`);
const stop = (): void => { server.close(() => process.exit(0)); server.closeAllConnections(); };
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
