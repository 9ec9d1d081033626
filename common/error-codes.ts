// Every error code a client can see: its HTTP status, what it means, and which listener
// answers with it. The one list: HttpError, ImageError and the gateway's sendError take
// only a code from it, with its own status (a typo or a wrong status does not compile);
// docs/errors.md and the OpenAPI documents' error schemas are rendered from it.
// Adding a code is one line here (then `npm run docs:errors`).

/** Who answers: the gateway's public listener, its admin API, an image backend, the webhook worker's admin API. */
export type Answerer = 'gateway' | 'admin' | 'backend' | 'webhooks';

export interface ErrorCodeEntry {
  readonly status: number;
  /** The status is the config's choice (nginx's limit_req_status); `status` is the default. */
  readonly configurable?: true;
  readonly by: readonly Answerer[];
  readonly meaning: string;
}

export const ERROR_CODES = {
  bad_request: { status: 400, by: ['gateway', 'admin', 'backend', 'webhooks'], meaning: 'Malformed request (HTTP syntax, target, framing) or bad options or body; `field` names the first one at fault, the message every problem.' },
  unauthorized: { status: 401, by: ['gateway', 'admin', 'webhooks'], meaning: 'Missing, unknown, revoked, expired or rotated-out credential, or a key whose checksum is wrong (the gateway adds `WWW-Authenticate`); or a wrong admin token.' },
  forbidden: { status: 403, by: ['gateway', 'admin', 'webhooks'], meaning: 'The credential is valid but its plan does not include the route, or the key is used from outside its allowlist; or the admin API is disabled.' },
  not_found: { status: 404, by: ['gateway', 'admin', 'backend', 'webhooks'], meaning: 'No route or endpoint for the path, or no such resource (a result unknown or expired, a watermark, key, customer or dead letter).' },
  method_not_allowed: { status: 405, by: ['gateway', 'admin', 'backend', 'webhooks'], meaning: 'The endpoint does not take this method; `Allow` lists those it does.' },
  request_timeout: { status: 408, by: ['gateway', 'backend'], meaning: 'The request head or body did not arrive in time, or the body arrived slower than the minimum body rate.' },
  conflict: { status: 409, by: ['admin', 'webhooks'], meaning: 'The change conflicts with the current state (a key defined in the config file, a job that is no longer a dead letter).' },
  idempotency_in_progress: { status: 409, by: ['gateway'], meaning: 'A request with this `Idempotency-Key` is still being processed; retry when it has finished (`Retry-After`).' },
  gone: { status: 410, by: ['gateway'], meaning: 'A route answers that the path is gone (a `return` of status 410 without a code of its own).' },
  payload_too_large: { status: 413, by: ['gateway', 'admin', 'backend'], meaning: 'The body is over the route\'s, plan\'s or endpoint\'s limit (refused before it is read when declared); for images also too many pixels or frames, or a fetched body over the limit.' },
  unsupported_media_type: { status: 415, by: ['gateway', 'backend'], meaning: 'The bytes are not an image type the backend accepts (unknown, off the allow-list, SVG while disabled, polyglots), or the request body is not the type the endpoint takes.' },
  expectation_failed: { status: 417, by: ['gateway'], meaning: 'An `Expect` other than `100-continue`.' },
  unprocessable_image: { status: 422, by: ['backend'], meaning: 'An accepted image type the decoder cannot read (truncated, corrupt, its header disagreeing with its magic number).' },
  forbidden_destination: { status: 422, by: ['backend'], meaning: 'A URL to fetch or write to resolves to a loopback, private or link-local address.' },
  bad_redirect: { status: 422, by: ['backend'], meaning: 'A fetched URL redirected without a usable `Location`, or to a refused URL.' },
  too_many_redirects: { status: 422, by: ['backend'], meaning: 'A fetched URL redirected more times than the backend follows.' },
  fetch_failed: { status: 422, by: ['backend'], meaning: 'A URL to fetch did not resolve, could not be reached, or answered with an error status.' },
  store_rejected: { status: 422, by: ['backend'], meaning: 'The customer\'s bucket (the `store` option) refused the write: credentials, permissions, no such bucket.' },
  idempotency_key_reused: { status: 422, by: ['gateway'], meaning: 'This `Idempotency-Key` was used for a different request (method, path, Content-Type, options or body); use a new key.' },
  rate_limited: { status: 429, configurable: true, by: ['gateway', 'admin', 'webhooks'], meaning: 'A request-rate limit (the plan\'s token bucket, or a `limit_req` zone, whose status the config may set) was hit, or too many wrong admin tokens came from one address; `Retry-After` says when to try again.' },
  quota_exceeded: { status: 429, by: ['gateway'], meaning: 'The plan\'s daily or monthly quota is used up; `Retry-After` says when it resets.' },
  concurrency_limited: { status: 429, configurable: true, by: ['gateway'], meaning: 'Too many requests in flight for the customer (the plan) or a `limit_conn` zone (whose status the config may set).' },
  header_too_large: { status: 431, by: ['gateway'], meaning: 'The request head is over the maximum header bytes.' },
  internal_error: { status: 500, by: ['gateway', 'admin', 'backend', 'webhooks'], meaning: 'A fault of ours; the request id finds it in the logs.' },
  not_implemented: { status: 501, by: ['gateway'], meaning: 'A route answers that this is not implemented (a `return` of status 501 without a code of its own).' },
  not_migrated: { status: 501, by: ['gateway'], meaning: 'The nginx location this path fell under was not translated by `sluice import-nginx`: the imported route answers exactly its paths instead of changing what they do.' },
  bad_gateway: { status: 502, by: ['gateway'], meaning: 'The upstream refused or reset the connection, or sent something that is not HTTP.' },
  store_unavailable: { status: 502, by: ['backend'], meaning: 'The customer\'s bucket (the `store` option) could not be reached.' },
  unavailable: { status: 503, by: ['gateway', 'admin', 'backend'], meaning: 'No healthy target in the upstream, the credential or limit store is down and the plan fails closed, or face detection is off or failed.' },
  overloaded: { status: 503, by: ['gateway', 'backend'], meaning: 'Load shed: the gateway is serving higher priorities first, or every slot and queue place of the backend is taken; `Retry-After` says when to try again.' },
  upstream_timeout: { status: 504, by: ['gateway', 'backend'], meaning: 'The upstream (or a URL the backend fetches) did not connect, answer or finish its body in time.' },
  processing_timeout: { status: 504, by: ['backend'], meaning: 'Processing the image took longer than the backend\'s timeout (its own work, not an upstream\'s).' },
  store_timeout: { status: 504, by: ['backend'], meaning: 'The customer\'s bucket (the `store` option) did not answer in time.' },
} as const satisfies Readonly<Record<string, ErrorCodeEntry>>;

export type ErrorCode = keyof typeof ERROR_CODES;

type Entry<C extends ErrorCode> = (typeof ERROR_CODES)[C];

/** The status a code is answered with: its own, or any for a code whose status the config sets. */
export type StatusOf<C extends ErrorCode> = Entry<C> extends { readonly configurable: true } ? number : Entry<C>['status'];

/** A status and a code that belong together: `[400, 'bad_request']`, `[429, 'quota_exceeded']`, … */
export type StatusAndCode = { [C in ErrorCode]: readonly [status: StatusOf<C>, code: C] }[ErrorCode];

export const ERROR_CODE_NAMES = Object.keys(ERROR_CODES) as readonly ErrorCode[];

/**
 * A code the operator's config names (a route's `return: {status, error: {code}}`),
 * which the table cannot know: the envelope carries it as written.
 */
export type ConfiguredCode = string & { readonly configured: unique symbol };

export function configuredCode(code: string): ConfiguredCode {
  return code as ConfiguredCode;
}

/** The codes `who` answers with, in the table's order. */
export function codesAnsweredBy(who: Answerer): ErrorCode[] {
  return ERROR_CODE_NAMES.filter((c) => (ERROR_CODES[c].by as readonly Answerer[]).includes(who));
}

const ANSWERER_NAMES: Readonly<Record<Answerer, string>> = {
  gateway: 'gateway',
  admin: 'admin API',
  backend: 'image backend',
  webhooks: 'webhook worker',
};

/** docs/errors.md. */
export function errorCodesMarkdown(): string {
  const rows = ERROR_CODE_NAMES.map((c) => {
    const e: ErrorCodeEntry = ERROR_CODES[c];
    const status = e.configurable ? `${e.status}*` : String(e.status);
    return `| ${status} | \`${c}\` | ${e.meaning} | ${e.by.map((b) => ANSWERER_NAMES[b]).join(', ')} |`;
  });
  return `# Error codes

<!-- Generated from common/error-codes.ts by \`npm run docs:errors\`; common/error-codes.test.ts fails when this file differs. -->

- [The error body](#the-error-body)
- [Codes](#codes)
- [Adding a code](#adding-a-code)

## The error body

Every error, from every listener (the gateway, its admin API, the image backends, the
webhook worker's admin API), is JSON of one shape:

\`\`\`json
{"error":{"code":"bad_request","message":"resize.width: must be an integer from 1 to 8192","request_id":"0b7c…","field":"resize.width"}}
\`\`\`

\`code\` is stable and machine-readable; \`message\` is for people; \`request_id\` is the
request's \`X-Request-Id\`, also in the logs; \`field\`, when present, names the option or
form field at fault. The OpenAPI documents (\`GET /v1/openapi.json\`, the backend's
\`/openapi.json\`, \`/admin/openapi.json\`) list the codes each of them answers with.

## Codes

| status | code | meaning | answered by |
| --- | --- | --- | --- |
${rows.join('\n')}

\\* The default: the route's \`limit_req\`/\`limit_conn\` zone may set another (nginx's \`limit_req_status\`).

A route that answers itself (\`return: {status, error: {code, message}}\`) may name a code
of its own; the envelope carries it as written. A \`return\` of an error status without a
code gets the table's code for that status (\`gone\`, \`not_implemented\`, ...), or
\`http_<status>\` for a status the table has none for.

## Adding a code

One line in \`ERROR_CODES\` (\`common/error-codes.ts\`): the code, its status, who answers
with it, what it means. Then \`npm run docs:errors\` rewrites this page (and \`npm run
openapi\` the image API's document). Call sites name the code (\`new HttpError(409,
'conflict', …)\`, \`sendError(ctx, 503, 'overloaded', …)\`): a code that is not in the
table, or a status that is not its own, does not compile.
`;
}
