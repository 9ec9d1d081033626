import type { IncomingMessage } from 'node:http';

/** `$scheme`: https on a TLS listener (its sockets are TLSSockets, which say `encrypted`), else http. */
export function schemeOf(req: IncomingMessage): 'http' | 'https' {
  return (req.socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http';
}
