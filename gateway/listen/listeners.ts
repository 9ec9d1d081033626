import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { ServerConfig, SluiceConfig } from '../config/types.js';
import { DEFAULT_LISTENER } from '../route/route-table.js';
import type { ListenerConfig } from './listener-config.js';
import { tlsContexts, type TlsContexts } from './sni.js';

/** What a listener does with what its server hands it; the listener adds its own name. */
export interface ListenerHandlers {
  request(req: IncomingMessage, res: ServerResponse, listener: string): void;
  /** An `Upgrade` request that shouldUpgrade accepted: the socket is the caller's from here on. */
  upgrade(req: IncomingMessage, socket: Socket, head: Buffer, listener: string): void;
  /** Whether an `Upgrade` request becomes a tunnel candidate (else it is an ordinary request). */
  shouldUpgrade(req: IncomingMessage): boolean;
  clientError(err: NodeJS.ErrnoException, socket: Socket): void;
  /** A TLS handshake that failed (an old protocol, no shared cipher, a timeout, a reset); Node has closed the socket. */
  tlsError(err: NodeJS.ErrnoException, listener: string): void;
  connect(req: IncomingMessage, socket: Socket): void;
}

/** Where a listener ended up (port 0 picks one), as logs and the cluster report it. */
export interface ListenerPort {
  readonly name: string;
  readonly port: number;
  readonly tls: boolean;
}

export interface BoundListener extends ListenerPort {
  readonly host: string;
  readonly server: Server;
}

interface Open extends BoundListener {
  /** A TLS listener's: serve these certificates from the next handshake on. */
  readonly swapTls: ((t: TlsContexts) => void) | undefined;
}

/**
 * The sockets clients connect to, one HTTP(S) server each, all feeding the same handlers.
 * A reload swaps each TLS listener's certificates in place (new handshakes get them,
 * open connections keep theirs); the sockets themselves are restart-only in one process
 * (restartOnlyListeners), while a cluster's rolling reload starts workers on the new set.
 */
export class Listeners {
  private constructor(private readonly open: readonly Open[]) {}

  static async start(cfg: SluiceConfig, handlers: ListenerHandlers): Promise<Listeners> {
    const open: Open[] = [];
    try {
      // In order: a cluster worker's n-th port-0 listen shares the primary's n-th port-0 socket.
      for (const l of cfg.listeners) open.push(await startOne(l, cfg.server, handlers));
    } catch (err) {
      for (const o of open) o.server.close();
      throw err;
    }
    return new Listeners(open);
  }

  get bound(): readonly BoundListener[] {
    return this.open;
  }

  /** New certificates (and TLS settings) for the listeners that stay; the config was validated, so building them does not fail. */
  reloadTls(cfg: SluiceConfig): void {
    const next = new Map(cfg.listeners.map((l) => [l.name, l]));
    const built = this.open.map((o) => {
      const tls = next.get(o.name)?.tls;
      return tls === undefined || o.swapTls === undefined ? undefined : tlsContexts(tls);
    });
    this.open.forEach((o, i) => {
      const t = built[i];
      if (t !== undefined) o.swapTls!(t);
    });
  }
}

function startOne(l: ListenerConfig, s: ServerConfig, h: ListenerHandlers): Promise<Open> {
  // The head is part of the request, so a longer headers timeout could never apply; Node
  // refuses to start with one rather than ignore it.
  const headersTimeout = Math.min(s.headers_timeout_ms, s.request_timeout_ms);
  const options: ServerOptions = {
    maxHeaderSize: s.max_header_bytes,
    headersTimeout,
    requestTimeout: s.request_timeout_ms,
    keepAliveTimeout: s.keep_alive_timeout_ms,
    // Node checks the two timeouts above on this interval (default 30 s, far too coarse).
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersTimeout / 4))),
    // Checked in checkRequest instead, so the 400 has the JSON body (Node's has none).
    requireHostHeader: false,
    shouldUpgradeCallback: (req) => h.shouldUpgrade(req),
  };
  const name = l.name;
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => h.request(req, res, name);
  let server: Server;
  let swapTls: Open['swapTls'];
  if (l.tls === undefined) {
    server = createHttpServer(options, onRequest);
  } else {
    let current = tlsContexts(l.tls);
    const https = createHttpsServer({
      ...options,
      ...current.defaults,
      // A handshake is part of the request head's time: a client that stalls in it is a slowloris too.
      handshakeTimeout: headersTimeout,
      SNICallback: (servername, cb) => cb(null, current.select(servername)),
    }, onRequest);
    // https.Server hands a failed handshake to 'clientError', whose handler here answers
    // with an HTTP 400: on a socket that never became TLS that answer is never sent, the
    // socket stays open (the handshake timeout never ends it) and a request is counted that
    // never was. A failed handshake is only counted, and its socket closed.
    https.removeAllListeners('tlsClientError');
    https.on('tlsClientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      h.tlsError(err, name);
      socket.destroy();
    });
    swapTls = (t) => {
      current = t;
      https.setSecureContext(t.defaults);
    };
    // An https.Server is an http.Server underneath (same events, close and connection sweeps).
    server = https as unknown as Server;
  }
  // Left to itself Node answers "Expect: 100-continue" before any stage has run, inviting
  // bodies that auth or limits then refuse; the proxy stage sends 100 once it forwards one.
  server.on('checkContinue', onRequest);
  // Any other Expect: answered by checkRequest with the JSON error, not by Node with a bare 417.
  server.on('checkExpectation', onRequest);
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => h.upgrade(req, socket, head, name));
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => h.clientError(err, socket));
  // CONNECT (authority-form) never reaches onRequest; without a listener Node just drops the socket.
  server.on('connect', (req: IncomingMessage, socket: Socket) => h.connect(req, socket));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: l.port, host: l.host }, () => {
      server.off('error', reject);
      resolve({ name, host: l.host, port: (server.address() as AddressInfo).port, tls: swapTls !== undefined, server, swapTls });
    });
  });
}

/**
 * What one process cannot change on reload: the sockets. A listener added, removed,
 * renamed, moved or switched between plain and TLS needs a restart (a cluster's rolling
 * reload does it by starting new workers); certificates and TLS settings reload in place.
 */
export function restartOnlyListeners(a: readonly ListenerConfig[], b: readonly ListenerConfig[]): string[] {
  const [da, db] = [a[0]!, b[0]!];
  if (a.length === 1 && b.length === 1 && da.name === DEFAULT_LISTENER && db.name === DEFAULT_LISTENER && da.tls === undefined && db.tls === undefined) {
    return [...(da.host === db.host ? [] : ['server.host']), ...(da.port === db.port ? [] : ['server.port'])];
  }
  const shape = (ls: readonly ListenerConfig[]): string => JSON.stringify(ls.map((l) => [l.name, l.host, l.port, l.tls !== undefined]));
  return shape(a) === shape(b) ? [] : ['listeners'];
}
