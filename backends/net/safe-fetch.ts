// Server-side HTTP(S) requests to URLs a client chose (POST /v1/images/fetch, webhooks),
// guarded against SSRF.
//
// Why this is TOCTOU-safe: there is no separate "check the hostname, then let the HTTP
// library connect" step. Each connection is opened by our own undici `connect` hook,
// which resolves the name once, checks every resolved address against the policy, and
// opens the TCP socket to that exact checked IP literal (so no second DNS lookup can
// happen underneath us). The HTTP layer keeps the name for the Host header and TLS SNI /
// certificate verification. A fresh undici Client is used per hop and destroyed after it,
// so a kept-alive socket is never reused for a redirect target that was not checked, and
// every redirect goes through the same hook again (DNS rebinding between hops is caught).
//
// Failures are ImageErrors, mapped as follows (and documented in the README):
//   400 bad_request            URL unparsable, scheme not http(s), credentials in the URL
//   422 forbidden_destination  the name resolves to a loopback/private/link-local/... IP
//   422 bad_redirect           a redirect without a usable Location, or to a bad scheme
//   422 too_many_redirects     more than maxRedirects hops
//   422 fetch_failed           DNS failure, connection refused/reset, or a non-2xx answer.
//                              422 rather than 502: the client supplied the URL, so an
//                              unusable answer is a problem with the request, not with
//                              our service (and ImageError has no 502 by design).
//   413 payload_too_large      body larger than maxBytes (connection aborted mid-stream)
//   504 upstream_timeout       the whole exchange (DNS, connect, all hops, body) exceeded
//                              timeoutMs

import { lookup } from 'node:dns/promises';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { Client } from 'undici';
import { ImageError } from '../image/types.js';
import { isForbiddenAddress } from './address-policy.js';

export interface ResolvedAddress {
  readonly address: string;
  readonly family: 4 | 6;
}
export type Resolver = (host: string) => Promise<ResolvedAddress[]>;
/** Opens a TCP socket to an already-checked IP literal; `host` is informational. */
export type Connector = (address: string, port: number, host: string) => Promise<Socket>;

export interface GuardOptions {
  /** CIDRs or addresses that are allowed even though the policy forbids them. */
  readonly allow: readonly string[];
  readonly resolve?: Resolver | undefined;
  readonly connect?: Connector | undefined;
  /** Extra trust anchors for https (tests with a self-signed cert). */
  readonly ca?: string | Buffer | undefined;
}

export interface SafeFetchOptions extends GuardOptions {
  readonly maxBytes: number;
  readonly timeoutMs: number;
  readonly maxRedirects: number;
}

export interface SafeFetchResult {
  readonly body: Buffer;
  readonly contentType: string | undefined;
  readonly finalUrl: string;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const USER_AGENT = 'Sluice-Fetch/0.1';

export const defaultResolver: Resolver = async (host) => {
  // verbatim keeps the resolver's order; all: true so every address can be checked.
  const found = await lookup(host, { all: true, verbatim: true });
  return found.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

export const defaultConnector: Connector = (address, port) =>
  new Promise((resolve, reject) => {
    // address is an IP literal, so net.connect performs no DNS lookup of its own.
    const socket = netConnect({ host: address, port });
    socket.once('connect', () => {
      socket.removeListener('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });

/** Parses and vets a URL a client supplied (or a redirect's resolved Location). */
export function checkUrl(raw: string, context: 'request' | 'redirect'): URL {
  const refuse = (message: string): ImageError =>
    context === 'request'
      ? new ImageError(400, 'bad_request', message, 'url')
      : new ImageError(422, 'bad_redirect', `redirect refused: ${message}`, 'url');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw refuse('not a valid absolute URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw refuse(`scheme ${url.protocol} is not allowed; use http or https`);
  }
  if (url.username !== '' || url.password !== '') {
    throw refuse('credentials in the URL are not allowed');
  }
  if (url.hostname === '') throw refuse('the URL has no host');
  return url;
}

function stripBrackets(hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
}

/** Rejects when the signal aborts, so a hung resolver or connector cannot outlive the deadline. */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal, onLate?: (v: T) => void): Promise<T> {
  if (signal.aborted) {
    p.then((v) => onLate?.(v), () => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      p.then((v) => onLate?.(v), () => undefined);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) onLate?.(v);
        else resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/**
 * Resolves `host`, checks every address, and opens a socket to a checked address.
 * Every resolved address must pass: a name that also points inside is refused outright
 * rather than "trying the public one", which is what rebinding setups rely on.
 */
export async function guardedSocket(url: URL, opts: GuardOptions, signal: AbortSignal): Promise<Socket> {
  const host = stripBrackets(url.hostname);
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  let addresses: ResolvedAddress[];
  if (isIP(host) !== 0) {
    addresses = [{ address: host, family: isIP(host) === 6 ? 6 : 4 }];
  } else {
    try {
      addresses = await untilAborted((opts.resolve ?? defaultResolver)(host), signal);
    } catch (err) {
      if (signal.aborted) throw err;
      throw new ImageError(422, 'fetch_failed', `could not resolve ${host}`, 'url');
    }
  }
  if (addresses.length === 0) throw new ImageError(422, 'fetch_failed', `could not resolve ${host}`, 'url');
  const bad = addresses.find((a) => isForbiddenAddress(a.address, opts.allow));
  if (bad) {
    throw new ImageError(422, 'forbidden_destination', `${host} resolves to a non-public address`, 'url');
  }
  const target = addresses[0]!.address;
  const raw = await untilAborted((opts.connect ?? defaultConnector)(target, port, host), signal, (s) => s.destroy());
  if (url.protocol === 'http:') return raw;
  return new Promise<Socket>((resolve, reject) => {
    // SNI and certificate identity come from the name, the TCP peer from the checked IP.
    const tls = tlsConnect({
      socket: raw,
      host,
      servername: isIP(host) === 0 ? host : undefined,
      ALPNProtocols: ['http/1.1'],
      ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
    });
    tls.once('secureConnect', () => {
      tls.removeListener('error', reject);
      resolve(tls);
    });
    tls.once('error', (e) => {
      raw.destroy();
      reject(e);
    });
  });
}

export interface HopRequest {
  readonly method: 'GET' | 'POST';
  readonly headers: Record<string, string>;
  readonly body?: string | Buffer | undefined;
}

export interface HopResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  /** Undefined unless the caller asked for the body (readBody). */
  readonly body: Buffer | undefined;
}

/**
 * One HTTP exchange over a guarded connection, no redirects followed. The body is read
 * (up to maxBytes, else 413) only for 2xx answers when readBody is set; otherwise it is
 * discarded by closing the connection.
 */
export async function guardedExchange(
  url: URL,
  req: HopRequest,
  opts: GuardOptions & { readonly maxBytes: number; readonly readBody: boolean },
  signal: AbortSignal,
): Promise<HopResponse> {
  const client = new Client(url.origin, {
    connect: (_o, cb) => {
      guardedSocket(url, opts, signal).then(
        (s) => cb(null, s),
        (e: Error) => cb(e, null),
      );
    },
    pipelining: 1,
  });
  try {
    const res = await client.request({
      path: `${url.pathname}${url.search}`,
      method: req.method,
      headers: { 'user-agent': USER_AGENT, ...req.headers },
      body: req.body,
      signal,
    });
    let body: Buffer | undefined;
    const ok = res.statusCode >= 200 && res.statusCode < 300;
    if (ok && opts.readBody) {
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > opts.maxBytes) {
        discard(res.body);
        throw tooLarge(opts.maxBytes);
      }
      const chunks: Buffer[] = [];
      let total = 0;
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        total += chunk.length;
        if (total > opts.maxBytes) {
          discard(res.body);
          throw tooLarge(opts.maxBytes);
        }
        chunks.push(chunk);
      }
      body = Buffer.concat(chunks, total);
    } else {
      discard(res.body);
    }
    return { status: res.statusCode, headers: res.headers, body };
  } finally {
    // Never reuse the connection: the next hop must pass through the guard again.
    void client.destroy().catch(() => undefined);
  }
}

// Destroying an undici body emits an AbortError on it; nobody is listening any more and
// the connection is torn down with the client anyway.
function discard(body: { on(e: 'error', f: () => void): unknown; destroy(): unknown }): void {
  body.on('error', () => undefined);
  body.destroy();
}

function tooLarge(maxBytes: number): ImageError {
  return new ImageError(413, 'payload_too_large', `the fetched body exceeds ${maxBytes} bytes`, 'url');
}

/**
 * Runs `work` with an AbortSignal that fires after timeoutMs, and maps what fails into the
 * client-facing ImageErrors (504 on the deadline, 422 otherwise). Not the gateway's store
 * deadline (common/deadline.ts): that one races a promise it cannot cancel; this
 * one cancels the work.
 */
export async function fetchWithin<T>(timeoutMs: number, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error('deadline')), timeoutMs);
  try {
    return await work(controller.signal);
  } catch (err) {
    if (controller.signal.aborted) {
      throw new ImageError(504, 'upstream_timeout', `the fetch did not complete within ${timeoutMs} ms`, 'url');
    }
    if (err instanceof ImageError) throw err;
    const code = (err as { code?: unknown }).code;
    const detail = typeof code === 'string' ? code : err instanceof Error ? err.message : 'error';
    throw new ImageError(422, 'fetch_failed', `the fetch failed (${detail})`, 'url');
  } finally {
    clearTimeout(timer);
  }
}

/** GETs a client-supplied URL with the SSRF guard, following a bounded number of redirects. */
export async function safeFetch(rawUrl: string, opts: SafeFetchOptions): Promise<SafeFetchResult> {
  let url = checkUrl(rawUrl, 'request');
  return fetchWithin(opts.timeoutMs, async (signal) => {
    for (let hop = 0; hop <= opts.maxRedirects + 1; hop++) {
      const res = await guardedExchange(
        url,
        { method: 'GET', headers: { accept: 'image/*' } },
        { ...opts, readBody: true },
        signal,
      );
      if (REDIRECTS.has(res.status)) {
        if (hop >= opts.maxRedirects) {
          throw new ImageError(422, 'too_many_redirects', `more than ${opts.maxRedirects} redirects`, 'url');
        }
        const location = res.headers['location'];
        if (typeof location !== 'string' || location === '') {
          throw new ImageError(422, 'bad_redirect', 'redirect without a Location header', 'url');
        }
        let next: string;
        try {
          next = new URL(location, url).href;
        } catch {
          throw new ImageError(422, 'bad_redirect', 'redirect to an invalid URL', 'url');
        }
        url = checkUrl(next, 'redirect');
        continue;
      }
      if (res.status < 200 || res.status >= 300 || !res.body) {
        throw new ImageError(422, 'fetch_failed', `the URL answered HTTP ${res.status}`, 'url');
      }
      const ct = res.headers['content-type'];
      return { body: res.body, contentType: Array.isArray(ct) ? ct[0] : ct, finalUrl: url.href };
    }
    // Unreachable: the loop throws too_many_redirects first; kept as a hard bound.
    throw new ImageError(422, 'too_many_redirects', `more than ${opts.maxRedirects} redirects`, 'url');
  });
}
