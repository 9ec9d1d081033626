// node:http agents whose every connection goes through the SSRF guard (safe-fetch.ts:
// resolve, check every address, connect to a checked one, TLS on top for https), for
// clients we do not write the requests of, such as the AWS SDK writing to a customer's
// bucket at a customer-chosen endpoint.

import { Agent as HttpAgent, type ClientRequestArgs } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Duplex } from 'node:stream';
import { guardedSocket, type GuardOptions } from './safe-fetch.js';

type Done = (err: Error | null, socket: Duplex) => void;

function connectGuarded(protocol: 'http:' | 'https:', guard: GuardOptions, connectTimeoutMs: number, options: ClientRequestArgs, done: Done): undefined {
  const host = options.hostname ?? options.host ?? 'localhost';
  const port = options.port ?? (protocol === 'https:' ? 443 : 80);
  const url = new URL(`${protocol}//${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}/`);
  guardedSocket(url, guard, AbortSignal.timeout(connectTimeoutMs)).then(
    (socket) => done(null, socket),
    (err: Error) => done(err, undefined as unknown as Duplex),
  );
  // Asynchronous: node:http waits for the callback.
  return undefined;
}

export function guardedAgents(guard: GuardOptions, connectTimeoutMs: number): { httpAgent: HttpAgent; httpsAgent: HttpsAgent } {
  class GuardedHttp extends HttpAgent {
    override createConnection(options: ClientRequestArgs, done: Done): undefined {
      return connectGuarded('http:', guard, connectTimeoutMs, options, done);
    }
  }
  class GuardedHttps extends HttpsAgent {
    override createConnection(options: ClientRequestArgs, done: Done): undefined {
      return connectGuarded('https:', guard, connectTimeoutMs, options, done);
    }
  }
  return { httpAgent: new GuardedHttp({ keepAlive: false }), httpsAgent: new GuardedHttps({ keepAlive: false }) };
}
