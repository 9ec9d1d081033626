import type { IncomingMessage } from 'node:http';
import { checkRequestTarget, type TargetCheck } from './request-target.js';

/** A refused request is 400, except an expectation the gateway cannot meet (417). */
export type RequestCheck = TargetCheck | { readonly ok: false; readonly status: 417; readonly reason: string };

/**
 * What Node's parser lets through but a proxy must not: a protocol other than HTTP/1.0 or
 * 1.1 (the parser accepts "HTTP/2.0" and bare HTTP/0.9-style request lines), an HTTP/1.1
 * request without Host, or any request with more than one (RFC 9112 §3.2: answer 400, as
 * two hosts let the gateway and the upstream disagree on which was meant), an Expect
 * other than 100-continue (RFC 9110 §10.1.1: 417; Node would send a bare one), then
 * the request-target checks.
 */
export function checkRequest(req: IncomingMessage): RequestCheck {
  if (req.httpVersionMajor !== 1 || (req.httpVersionMinor !== 0 && req.httpVersionMinor !== 1)) {
    return { ok: false, reason: `HTTP/${req.httpVersion} is not supported; use HTTP/1.1` };
  }
  let hosts = 0;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') hosts++;
  if (hosts > 1) return { ok: false, reason: 'request has more than one Host header' };
  if (hosts === 0 && req.httpVersionMinor === 1) return { ok: false, reason: 'HTTP/1.1 request without a Host header' };
  const expect = req.headers.expect;
  if (expect !== undefined && expect.toLowerCase() !== '100-continue') {
    return { ok: false, status: 417, reason: 'the only expectation supported is Expect: 100-continue' };
  }
  return checkRequestTarget(req.url);
}
