import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Metrics } from '../observe/metrics.js';
import type { ErrorCode } from '../../common/error-codes.js';
import { errorBody } from '../../common/errors.js';

export type RawAnswer = (socket: Socket, status: number, reason: string, code: ErrorCode, message: string) => void;

/**
 * Answers for requests that never reach the chain, because Node's parser refused them
 * (conflicting Content-Length/Transfer-Encoding, bad header syntax, oversized headers,
 * header and request timeouts) or because they are CONNECT: the JSON error shape written
 * straight to the socket, then close. Each still gets its access-log line and metrics.
 */
export function rawAnswerer(log: Logger | undefined, metrics: Metrics): RawAnswer {
  return (socket, status, reason, code, message) => {
    const requestId = randomUUID();
    const body = errorBody({ code, message }, requestId);
    socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\nx-request-id: ${requestId}\r\nconnection: close\r\n\r\n${body}`);
    metrics.requestDone('(none)', status, '(none)', 0);
    log?.info({ request_id: requestId, status, error: code, bytes_out: Buffer.byteLength(body), rejected: 'parser' }, 'request');
  };
}

export function answerClientError(answer: RawAnswer, err: NodeJS.ErrnoException, socket: Socket, inFlight: ServerResponse | undefined): void {
  // A response already under way (the upstream answered while the request body was still
  // coming) cannot be followed by another status line: cutting the connection is the only
  // honest signal left, as it is for a client that already reset.
  if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent === true) {
    socket.destroy();
    return;
  }
  const [status, reason, code, message] =
    err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large', 'header_too_large', 'request headers are too large'] as const
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout', 'request_timeout', 'request was not received in time'] as const
        : err.code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW' ? [413, 'Payload Too Large', 'payload_too_large', 'chunk extensions are too large'] as const
          : [400, 'Bad Request', 'bad_request', `malformed HTTP request (${err.code ?? 'parse error'})`] as const;
  answer(socket, status, reason, code, message);
}
