import { request } from 'undici';
import { ADMIN_TOKEN } from './config.js';

export interface AdminReply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON, or undefined for an empty body. */
  readonly body: any;
  readonly text: string;
}

/** One admin API call with the test admin token (pass token: null to send none). */
export async function admin(
  adminUrl: string,
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
  path: string,
  body?: unknown,
  token: string | null = ADMIN_TOKEN,
): Promise<AdminReply> {
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await request(`${adminUrl}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, body: text === '' ? undefined : JSON.parse(text), text };
}

/** Creates an API key through the admin API and returns the plain key and its digest. */
export async function createKey(adminUrl: string, customer: string, plan?: string): Promise<{ key: string; digest: string }> {
  const r = await admin(adminUrl, 'POST', '/admin/keys', plan === undefined ? { customer } : { customer, plan });
  if (r.status !== 201) throw new Error(`POST /admin/keys: ${r.status} ${r.text}`);
  return { key: r.body.key as string, digest: r.body.digest as string };
}
