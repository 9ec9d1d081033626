import type { StatusAndCode } from '../../common/error-codes.js';

/**
 * What a failure before the upstream's response started means: the client's answer, the
 * metrics' kind, and whether the request may be sent again (retry.ts's rules).
 */
export interface UpstreamFailure {
  /** A status and code of the table (common/error-codes.ts). */
  readonly answer: StatusAndCode;
  readonly message: string;
  /** For the metrics label; `client` and `body_limit` are the client's doing, the rest the upstream's. */
  readonly kind: 'connect' | 'timeout' | 'reset' | 'protocol' | 'client' | 'body_limit';
  /**
   * `connect`: no connection was made, so not a byte of the request left (undici writes
   * only on a connected socket). `reset`: the connection died with the request written
   * (undici re-sends a request that had not been written when a reused keep-alive socket
   * closed, on a new connection, so one that fails here was on the wire): the upstream may
   * have acted on it. Undefined: the upstream had the request long enough to be doing the
   * work (timeouts waiting for the answer, protocol errors), or the fault is the client's:
   * never retried.
   */
  readonly retry: 'connect' | 'reset' | undefined;
}

export class PayloadTooLarge extends Error {
  readonly code = 'SLUICE_PAYLOAD_TOO_LARGE';
  constructor(readonly limit: number) { super(`request body exceeds ${limit} bytes`); }
}

/** The client went away (mid-body, or before its queued request reached the upstream). */
export class ClientClosed extends Error {
  readonly code = 'SLUICE_CLIENT_CLOSED';
  constructor() { super('client closed the connection'); }
}

const REFUSED: UpstreamFailure = { answer: [502, 'bad_gateway'], message: 'upstream refused the connection', kind: 'connect', retry: 'connect' };
const CLOSED: UpstreamFailure = { answer: [502, 'bad_gateway'], message: 'upstream closed the connection', kind: 'reset', retry: 'reset' };
const SHORT_BODY: UpstreamFailure = { answer: [400, 'bad_request'], message: 'request body ended before its declared length', kind: 'client', retry: undefined };
/** Anything not in the table: a parser error, an oversized or short upstream answer, the unknown. */
const PROTOCOL: UpstreamFailure = { answer: [502, 'bad_gateway'], message: 'upstream sent an invalid response', kind: 'protocol', retry: undefined };

/** undici's, the socket's and our own error codes: the one classification the proxy and its retries read. */
export const UPSTREAM_FAILURES: Readonly<Record<string, UpstreamFailure>> = {
  UND_ERR_CONNECT_TIMEOUT: { answer: [504, 'upstream_timeout'], message: 'upstream did not accept the connection in time', kind: 'timeout', retry: 'connect' },
  UND_ERR_HEADERS_TIMEOUT: { answer: [504, 'upstream_timeout'], message: 'upstream did not answer in time', kind: 'timeout', retry: undefined },
  UND_ERR_BODY_TIMEOUT: { answer: [504, 'upstream_timeout'], message: 'upstream stalled while sending its response', kind: 'timeout', retry: undefined },
  ECONNREFUSED: REFUSED,
  EHOSTUNREACH: REFUSED,
  ENETUNREACH: REFUSED,
  UND_ERR_SOCKET: CLOSED,
  ECONNRESET: CLOSED,
  EPIPE: CLOSED,
  UND_ERR_REQ_CONTENT_LENGTH_MISMATCH: SHORT_BODY,
  UND_ERR_ABORTED: SHORT_BODY,
  ECONNABORTED: SHORT_BODY,
  SLUICE_CLIENT_CLOSED: { answer: [400, 'bad_request'], message: 'request ended before its body was complete', kind: 'client', retry: undefined },
};

/** How an undici failure before the response started reaches the client, and whether it may be retried. */
export function mapUpstreamError(err: unknown): UpstreamFailure {
  if (err instanceof PayloadTooLarge) return { answer: [413, 'payload_too_large'], message: err.message, kind: 'body_limit', retry: undefined };
  return UPSTREAM_FAILURES[(err as { code?: string }).code ?? ''] ?? PROTOCOL;
}
