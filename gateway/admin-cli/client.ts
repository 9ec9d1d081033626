import { request } from 'undici';

export interface AdminRequest {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Path and query, already percent-encoded. */
  readonly path: string;
  readonly body?: Record<string, unknown>;
}

export interface AdminAnswer {
  readonly status: number;
  /** Parsed JSON; undefined for an empty body. */
  readonly body: unknown;
}

/** The gateway did not answer at all (refused, unresolvable, or silent past the timeout). */
export class Unreachable extends Error {}

/** The answer is not JSON: whatever answered is not the admin API. */
export class NotAdminApi extends Error {}

export interface ClientOptions {
  readonly baseUrl: string;
  readonly token: string;
  readonly timeoutMs: number;
}

export async function send(o: ClientOptions, r: AdminRequest): Promise<AdminAnswer> {
  const headers: Record<string, string> = { authorization: `Bearer ${o.token}`, accept: 'application/json' };
  if (r.body !== undefined) headers['content-type'] = 'application/json';
  let status: number;
  let text: string;
  try {
    const res = await request(new URL(r.path, o.baseUrl), {
      method: r.method,
      headers,
      body: r.body === undefined ? undefined : JSON.stringify(r.body),
      headersTimeout: o.timeoutMs,
      bodyTimeout: o.timeoutMs,
      signal: AbortSignal.timeout(o.timeoutMs),
    });
    status = res.statusCode;
    text = await res.body.text();
  } catch (err) {
    const e = err as Error & { code?: string };
    const why = e.name === 'TimeoutError' || e.name === 'AbortError' || /timeout/i.test(e.code ?? '')
      ? `no answer within ${o.timeoutMs / 1000} s`
      : (e.code ?? e.message);
    throw new Unreachable(`${o.baseUrl}: ${why}`);
  }
  if (text === '') return { status, body: undefined };
  try {
    return { status, body: JSON.parse(text) as unknown };
  } catch {
    throw new NotAdminApi(`${o.baseUrl} answered ${status} with a body that is not JSON: is this the gateway's admin port?`);
  }
}
