// Test doubles for the SSRF guard. Nothing here may ever open a connection outside
// 127.0.0.0/8: the connector refuses other addresses before creating any socket, so a
// broken guard makes a test fail instead of reaching the network.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIPv4, type AddressInfo } from 'node:net';
import type { ResolvedAddress, Resolver } from '../../common/address-policy.js';
import type { Connector } from './safe-fetch.js';
import { defaultConnector } from './safe-fetch.js';

export interface ConnectCall {
  readonly address: string;
  readonly port: number;
  readonly host: string;
}

export function loopbackOnlyConnect(calls: ConnectCall[]): Connector {
  return async (address, port, host) => {
    calls.push({ address, port, host });
    if (!isIPv4(address) || !address.startsWith('127.')) {
      throw new Error(`test connector refused ${address}: only 127.0.0.0/8 is reachable from tests`);
    }
    return defaultConnector(address, port, host);
  };
}

/**
 * A resolver over a fixed table; a value that is an array of answers is consumed one
 * answer per lookup (the last one repeats), to play DNS-rebinding tricks. Unknown names
 * fail like NXDOMAIN; real DNS is never consulted.
 */
export function tableResolver(
  table: Record<string, string | string[] | string[][]>,
  lookups: string[],
): Resolver {
  const seen = new Map<string, number>();
  return async (host) => {
    lookups.push(host);
    const entry = table[host];
    if (entry === undefined) throw Object.assign(new Error(`ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    const n = seen.get(host) ?? 0;
    seen.set(host, n + 1);
    let answer: string[];
    if (typeof entry === 'string') answer = [entry];
    else if (entry.length > 0 && Array.isArray(entry[0])) {
      const seq = entry as string[][];
      answer = seq[Math.min(n, seq.length - 1)]!;
    } else answer = entry as string[];
    return answer.map((address): ResolvedAddress => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
}

export interface LocalServer {
  readonly server: Server;
  readonly port: number;
  readonly requests: IncomingMessage[];
  close(): Promise<void>;
}

export async function startServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<LocalServer> {
  const requests: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    requests.push(req);
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
