// Echo upstreams for --verify: each stands in for one upstream of the config and answers
// every request with what it received (which upstream it is, method, path, Host,
// headers), in the X-Verify-Echo header (HEAD answers have no body) and the body. A
// WebSocket upgrade is accepted (101), so an upgrade that reaches it is seen as one.

import { createHash } from 'node:crypto';
import { createServer as createHttp, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

export interface Echoed {
  readonly upstream: string;
  readonly method: string;
  readonly path: string;
  readonly host: string;
  readonly headers: Record<string, string>;
}

export interface EchoServer {
  readonly name: string;
  readonly port: number;
  readonly tls: boolean;
  close(): Promise<void>;
}

export const ECHO_HEADER = 'x-verify-echo';

/**
 * `proxyHost` is the Host nginx sends this upstream by default ($proxy_host): a Host
 * naming the echo's own address (nginx's proxy_pass now points here) is reported as it,
 * so nginx and Sluice are compared on the name the real upstream would have seen.
 */
export async function startEcho(name: string, proxyHost: string, tls: { cert: string; key: string } | undefined): Promise<EchoServer> {
  let port = 0;
  const describe = (req: IncomingMessage): Echoed => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : v ?? '';
    const host = headers.host ?? '';
    return { upstream: name, method: req.method ?? '', path: req.url ?? '', host: host === `127.0.0.1:${port}` ? proxyHost : host, headers };
  };
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    req.resume();
    req.on('end', () => {
      const body = JSON.stringify(describe(req));
      res.writeHead(200, { 'content-type': 'application/json', [ECHO_HEADER]: encodeURIComponent(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
  };
  const server: Server = tls === undefined ? createHttp(handler) : createHttps({ cert: tls.cert, key: tls.key }, handler);
  server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
    const accept = createHash('sha1').update(`${req.headers['sec-websocket-key'] ?? ''}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.end(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n${ECHO_HEADER}: ${encodeURIComponent(JSON.stringify(describe(req)))}\r\n\r\n`);
  });
  server.on('clientError', (_e, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', () => resolve()); });
  port = (server.address() as AddressInfo).port;
  return {
    name, port, tls: tls !== undefined,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
