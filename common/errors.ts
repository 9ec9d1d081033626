import { Type } from '@sinclair/typebox';

// The errors both sides raise and the one JSON shape a client sees for them
// (DESIGN.md, "Client-facing contract"): the gateway, its admin API, the image
// backends and the webhook worker's admin listener all answer with errorBody().

/** A failure an HTTP handler answers itself: status, a code from DESIGN.md, the message, the bad field if any. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field: string | undefined = undefined,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

/** A refused config, flag set or environment: every problem found, each naming what to fix. */
export class ConfigError extends Error {
  constructor(readonly errors: readonly string[]) {
    super(`invalid config:\n  ${errors.join('\n  ')}`);
  }
}

/** What errorBody() writes; the OpenAPI documents describe their errors with it. */
export const ErrorEnvelope = Type.Object({
  error: Type.Object({
    code: Type.String({ description: 'Stable and machine-readable (DESIGN.md lists them).' }),
    message: Type.String({ description: 'For humans; names the field and what it must be.' }),
    request_id: Type.String({ description: 'The X-Request-Id of the request, also in the logs.' }),
    field: Type.Optional(Type.String({ description: 'The option or form field at fault, when there is one.' })),
  }, { additionalProperties: false }),
}, { additionalProperties: false });

/** The error body; `field` names the bad option or form field when there is one. */
export function errorBody(e: { readonly code: string; readonly message: string; readonly field?: string | undefined }, requestId: string): string {
  const error: Record<string, string> = { code: e.code, message: e.message, request_id: requestId };
  if (e.field !== undefined) error.field = e.field;
  return JSON.stringify({ error });
}
