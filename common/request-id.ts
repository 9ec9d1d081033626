import { randomUUID } from 'node:crypto';

// A client's id is kept only when it is a short token of safe characters, so it can
// go into logs and upstream headers as is; anything else is replaced, not cleaned.
const SANE_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

export function requestIdFrom(header: string | string[] | undefined): string {
  if (typeof header === 'string' && SANE_ID.test(header)) return header;
  return randomUUID();
}
