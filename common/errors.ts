import { Type, type TObject } from '@sinclair/typebox';
import { ERROR_CODES, codesAnsweredBy, type Answerer, type ConfiguredCode, type ErrorCode, type StatusAndCode } from './error-codes.js';

// The errors both sides raise and the one JSON shape a client sees for them
// (DESIGN.md, "Client-facing contract"): the gateway, its admin API, the image
// backends and the webhook worker's admin listener all answer with errorBody().

/** What an HttpError is built from: a status and code from the table (error-codes.ts), the message, the bad field if any, headers. */
export type HttpErrorArgs = [...StatusAndCode, message: string, field?: string | undefined, headers?: Readonly<Record<string, string>>];

/** A failure an HTTP handler answers itself: status, a code from ERROR_CODES, the message, the bad field if any. */
export class HttpError extends Error {
  readonly status: number;
  readonly code: ErrorCode;
  readonly field: string | undefined;
  readonly headers: Readonly<Record<string, string>>;

  constructor(...[status, code, message, field, headers]: HttpErrorArgs) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
    this.headers = headers ?? {};
  }
}

/** A refused config, flag set or environment: every problem found, each naming what to fix. */
export class ConfigError extends Error {
  constructor(readonly errors: readonly string[]) {
    super(`invalid config:\n  ${errors.join('\n  ')}`);
  }
}

/** What errorBody() writes, for the OpenAPI document of `who`: its code is one of those they answer with. */
export function errorEnvelope(...who: readonly Answerer[]): TObject {
  const codes = [...new Set(who.flatMap(codesAnsweredBy))];
  return Type.Object({
    error: Type.Object({
      code: Type.Union(codes.map((c) => Type.Literal(c)), {
        description: `Stable and machine-readable (docs/errors.md): ${codes.map((c) => `${c} (${ERROR_CODES[c].status})`).join(', ')}.`,
      }),
      message: Type.String({ description: 'For humans; names the field and what it must be.' }),
      request_id: Type.String({ description: 'The X-Request-Id of the request, also in the logs.' }),
      field: Type.Optional(Type.String({ description: 'The option or form field at fault, when there is one.' })),
    }, { additionalProperties: false }),
  }, { additionalProperties: false });
}

/** The error body; `field` names the bad option or form field when there is one. */
export function errorBody(e: { readonly code: ErrorCode | ConfiguredCode; readonly message: string; readonly field?: string | undefined }, requestId: string): string {
  const error: Record<string, string> = { code: e.code, message: e.message, request_id: requestId };
  if (e.field !== undefined) error.field = e.field;
  return JSON.stringify({ error });
}
