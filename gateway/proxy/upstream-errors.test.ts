import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { errors } from 'undici';
import { ClientClosed, mapUpstreamError, PayloadTooLarge } from './upstream-errors.js';

// The end-to-end tests (proxy.upstream-failures, proxy.streaming) drive every failure that
// can be produced on loopback. A connect timeout, an unreachable host or network cannot
// be, without a test connecting somewhere other than 127.0.0.1, so their mapping is
// pinned here, next to the rest of the table so a change to one row shows against all.

const errno = (code: string): NodeJS.ErrnoException => Object.assign(new Error(code), { code });

describe('upstream-errors: how an upstream failure reaches the client, and whether it is retried', () => {
  const table: [string, unknown, number, string, string, 'connect' | 'reset' | undefined][] = [
    ['connect timeout', new errors.ConnectTimeoutError(), 504, 'upstream_timeout', 'timeout', 'connect'],
    ['headers timeout', new errors.HeadersTimeoutError(), 504, 'upstream_timeout', 'timeout', undefined],
    ['body timeout', new errors.BodyTimeoutError(), 504, 'upstream_timeout', 'timeout', undefined],
    ['refused', errno('ECONNREFUSED'), 502, 'bad_gateway', 'connect', 'connect'],
    ['host unreachable', errno('EHOSTUNREACH'), 502, 'bad_gateway', 'connect', 'connect'],
    ['network unreachable', errno('ENETUNREACH'), 502, 'bad_gateway', 'connect', 'connect'],
    ['socket closed by upstream', new errors.SocketError('other side closed'), 502, 'bad_gateway', 'reset', 'reset'],
    ['reset', errno('ECONNRESET'), 502, 'bad_gateway', 'reset', 'reset'],
    ['broken pipe', errno('EPIPE'), 502, 'bad_gateway', 'reset', 'reset'],
    ['not HTTP', Object.assign(new errors.HTTPParserError('bad'), { code: 'HPE_INVALID_CONSTANT' }), 502, 'bad_gateway', 'protocol', undefined],
    ['upstream head too large', new errors.HeadersOverflowError(), 502, 'bad_gateway', 'protocol', undefined],
    ['short upstream body', new errors.ResponseContentLengthMismatchError(), 502, 'bad_gateway', 'protocol', undefined],
    ['something unknown', new Error('?'), 502, 'bad_gateway', 'protocol', undefined],
    ['request body shorter than declared', new errors.RequestContentLengthMismatchError(), 400, 'bad_request', 'client', undefined],
    ['request body aborted', new errors.RequestAbortedError(), 400, 'bad_request', 'client', undefined],
    ['client went away', new ClientClosed(), 400, 'bad_request', 'client', undefined],
    ['body over the limit', new PayloadTooLarge(1024), 413, 'payload_too_large', 'body_limit', undefined],
  ];

  for (const [what, err, status, code, kind, retry] of table) {
    it(`${what} -> ${status} ${code} (${kind}), retry: ${retry ?? 'never'}`, () => {
      const m = mapUpstreamError(err);
      assert.deepEqual({ status: m.answer[0], code: m.answer[1], kind: m.kind, retry: m.retry }, { status, code, kind, retry });
      assert.ok(m.message.length > 0);
    });
  }

  it('says how large the limit was', () => {
    assert.match(mapUpstreamError(new PayloadTooLarge(1024)).message, /1024 bytes/);
  });
});
