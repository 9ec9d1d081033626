// The gateway benchmark's upstream: the echo backend the gateway tests use, as its own
// process, so `npm run bench` measures the gateway and not image work.
//   node dist/load-tests/echo-backend.js PORT [HOST]   (HOST: 127.0.0.1; the fault harness binds a host's address)
import { startEchoBackend } from '../test/harness/echo-backend.js';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  process.stderr.write('usage: echo-backend.js PORT\n');
  process.exit(2);
}
const server = await startEchoBackend(process.argv[3] ?? '127.0.0.1', port);
process.on('SIGTERM', () => { server.close(() => process.exit(0)); server.closeAllConnections(); });
