import type { ErrorCode } from '../http/errors.js';

export interface MappedError {
  readonly status: number;
  readonly code: ErrorCode;
  readonly message: string;
  /** For the metrics label: connect, timeout, reset, protocol, client, body_limit. */
  readonly kind: string;
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

/** How an undici failure before the response started reaches the client. */
export function mapUpstreamError(err: unknown): MappedError {
  if (err instanceof PayloadTooLarge) {
    return { status: 413, code: 'payload_too_large', message: err.message, kind: 'body_limit' };
  }
  if (err instanceof ClientClosed) {
    return { status: 400, code: 'bad_request', message: 'request ended before its body was complete', kind: 'client' };
  }
  const code = (err as { code?: string }).code ?? '';
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return { status: 504, code: 'upstream_timeout', message: 'upstream did not accept the connection in time', kind: 'timeout' };
    case 'UND_ERR_HEADERS_TIMEOUT':
      return { status: 504, code: 'upstream_timeout', message: 'upstream did not answer in time', kind: 'timeout' };
    case 'UND_ERR_BODY_TIMEOUT':
      return { status: 504, code: 'upstream_timeout', message: 'upstream stalled while sending its response', kind: 'timeout' };
    case 'ECONNREFUSED':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return { status: 502, code: 'bad_gateway', message: 'upstream refused the connection', kind: 'connect' };
    case 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH':
    case 'UND_ERR_ABORTED':
    case 'ECONNABORTED':
      return { status: 400, code: 'bad_request', message: 'request body ended before its declared length', kind: 'client' };
    case 'UND_ERR_SOCKET':
    case 'ECONNRESET':
    case 'EPIPE':
      return { status: 502, code: 'bad_gateway', message: 'upstream closed the connection', kind: 'reset' };
    default:
      return { status: 502, code: 'bad_gateway', message: 'upstream sent an invalid response', kind: 'protocol' };
  }
}
