import { request, type IncomingHttpHeaders } from 'node:http';

export interface ExactResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** The body as JSON, or undefined when it is not JSON. */
  readonly json: Record<string, unknown> | undefined;
}

export interface ExactOptions {
  readonly method?: string;
  readonly headers?: Record<string, string>;
  /** Host header; default 127.0.0.1:<port>. */
  readonly host?: string;
  /** The source address to connect from (any 127.x.y.z works on Linux loopback). */
  readonly localAddress?: string;
}

/**
 * One request with the path sent byte for byte as given (`//`, `..`, escapes: what
 * fetch-style clients would normalise first), on a fresh connection.
 */
export function sendExact(port: number, path: string, o: ExactOptions = {}): Promise<ExactResponse> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port, path, method: o.method ?? 'GET', agent: false, localAddress: o.localAddress,
      headers: { host: o.host ?? `127.0.0.1:${port}`, ...o.headers },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let json: Record<string, unknown> | undefined;
        try { json = JSON.parse(body) as Record<string, unknown>; } catch { json = undefined; }
        resolve({ status: res.statusCode!, headers: res.headers, body, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}
