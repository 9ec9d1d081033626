// One request to one side, and what came back that --verify compares.

import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { ECHO_HEADER, type Echoed } from './echo.js';
import { MARKER } from './render-nginx.js';
import type { VerifyRequest } from './requests.js';

export interface Outcome {
  /** 0: no answer (connection closed or refused, or a timeout). */
  readonly status: number;
  readonly error: string | undefined;
  readonly headers: IncomingHttpHeaders;
  /** What the echo upstream received, when the request reached one. */
  readonly echo: Echoed | undefined;
  /** nginx only: the location (or server) that answered, from the marker header. */
  readonly at: string | undefined;
}

const TIMEOUT_MS = 10_000;

export function send(r: VerifyRequest, port: number, tls: boolean): Promise<Outcome> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = { host: r.host, 'user-agent': 'sluice-verify' };
    if (r.websocket) Object.assign(headers, { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dmVyaWZ5LXZlcmlmeS0xMg==' });
    const body = r.method === 'POST' || r.method === 'DELETE' ? 'verify=1' : undefined;
    if (body !== undefined) Object.assign(headers, { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(body.length) });
    const opts = { host: '127.0.0.1', port, method: r.method, path: r.path, headers, agent: false as const, ...(tls ? { servername: r.host.includes('.') && !/^[\d.]+$/.test(r.host) ? r.host : undefined, rejectUnauthorized: false } : {}) };
    const req = (tls ? httpsRequest : httpRequest)(opts);
    const done = (o: Outcome): void => { clearTimeout(timer); resolve(o); };
    const timer = setTimeout(() => { req.destroy(); done({ status: 0, error: 'timeout', headers: {}, echo: undefined, at: undefined }); }, TIMEOUT_MS);
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      done({ status: res.statusCode ?? 0, error: undefined, headers: res.headers, echo: echoOf(res.headers), at: markerOf(res.headers) });
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => done({ status: res.statusCode ?? 0, error: undefined, headers: res.headers, echo: echoOf(res.headers), at: markerOf(res.headers) }));
      res.on('error', () => done({ status: res.statusCode ?? 0, error: 'body cut', headers: res.headers, echo: echoOf(res.headers), at: markerOf(res.headers) }));
    });
    req.on('error', (err) => done({ status: 0, error: (err as NodeJS.ErrnoException).code ?? err.message, headers: {}, echo: undefined, at: undefined }));
    req.end(body);
  });
}

function echoOf(h: IncomingHttpHeaders): Echoed | undefined {
  const v = h[ECHO_HEADER];
  if (typeof v !== 'string') return undefined;
  try {
    return JSON.parse(decodeURIComponent(v)) as Echoed;
  } catch {
    return undefined;
  }
}

function markerOf(h: IncomingHttpHeaders): string | undefined {
  const v = h[MARKER];
  return typeof v === 'string' ? v : Array.isArray(v) ? v[v.length - 1] : undefined;
}
