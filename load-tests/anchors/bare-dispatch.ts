// The reference for the gateway's CPU per request (issue 20): the least a Node process can
// do to proxy a request with the same libraries. node:http in, undici's Pool.dispatch out
// (the API the gateway's proxy stage uses), hop-by-hop headers dropped both ways, the
// response streamed back with backpressure. No auth, limits, metrics or logs.
//   node dist/load-tests/anchors/bare-dispatch.js PORT UPSTREAM_URL     (binds 127.0.0.1)
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import { Pool, type Dispatcher } from 'undici';

const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade',
  'proxy-authenticate', 'proxy-authorization', 'host', 'expect']);

class Handler implements Dispatcher.DispatchHandler {
  constructor(private readonly res: ServerResponse) {}

  // Its presence is what tells undici this is a handler of the controller API.
  onRequestStart(): void {}

  onResponseStart(_c: Dispatcher.DispatchController, status: number, headers: IncomingHttpHeaders): void {
    const out: string[] = [];
    for (const k in headers) {
      const v = headers[k];
      if (v === undefined || HOP.has(k)) continue;
      if (typeof v === 'string') out.push(k, v);
      else for (const x of v) out.push(k, x);
    }
    this.res.writeHead(status, out);
  }

  onResponseData(c: Dispatcher.DispatchController, chunk: Buffer): void {
    // A client gone at the end of a wrk run never drains: pausing for it would hold the
    // pool's connection forever.
    if (this.res.destroyed) {
      c.abort(new Error('client gone'));
      return;
    }
    if (!this.res.write(chunk)) {
      c.pause();
      this.res.once('drain', () => c.resume());
    }
  }

  onResponseEnd(): void {
    this.res.end();
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    if (this.res.headersSent) this.res.destroy(err);
    else this.res.writeHead(502).end();
  }
}

const [port, target] = [Number(process.argv[2] ?? 18095), process.argv[3] ?? 'http://127.0.0.1:18080'];
const pool = new Pool(target, { connections: 64, pipelining: 1, keepAliveTimeout: 30_000 });
const server = createServer((req, res) => {
  const raw = req.rawHeaders;
  const headers: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!.toLowerCase();
    if (!HOP.has(k)) headers.push(k, raw[i + 1]!);
  }
  const body = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined ? req : null;
  pool.dispatch({ origin: target, path: req.url!, method: req.method as Dispatcher.HttpMethod, headers, body }, new Handler(res));
});
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1', () => console.log(`bare-dispatch on http://127.0.0.1:${port} -> ${target}`));
const stop = (): void => { server.close(() => void pool.close().then(() => process.exit(0))); server.closeAllConnections(); };
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
