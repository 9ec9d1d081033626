import type { IncomingMessage } from 'node:http';
import { HttpError } from '../errors.js';
import type { Checked } from '../schema-check.js';

export const MAX_ADMIN_BODY = 64 * 1024;

/** The JSON body, checked by its schema: every problem in one 400, each naming its field. An empty body is `{}`. */
export async function readJsonBody<T>(req: IncomingMessage, check: (doc: unknown) => Checked<T>, maxBytes = MAX_ADMIN_BODY): Promise<T> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new HttpError(413, 'payload_too_large', `admin request body over ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  let v: unknown;
  try {
    v = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
  } catch {
    throw new HttpError(400, 'bad_request', 'body must be JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HttpError(400, 'bad_request', 'body must be a JSON object');
  const { value, errors } = check(v);
  if (errors.length > 0) throw new HttpError(400, 'bad_request', errors.join('; '));
  return value;
}
