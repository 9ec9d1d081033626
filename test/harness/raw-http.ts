import { connect } from 'node:net';

export interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** Everything the server sent before it closed (or before the deadline). */
  readonly raw: string;
  /** Milliseconds from connect to the end of the exchange. */
  readonly elapsedMs: number;
}

/**
 * Sends bytes exactly as given (for requests no well-behaved client would send) and
 * reads until the server closes the connection or `timeoutMs` passes.
 */
export function rawRequest(port: number, payload: string | Buffer, timeoutMs = 5000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const done = (): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(parse(Buffer.concat(chunks).toString('latin1'), performance.now() - started));
    };
    const timer = setTimeout(done, timeoutMs);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', done);
    s.on('close', done);
    s.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') done();
      else { clearTimeout(timer); reject(err); }
    });
    s.on('connect', () => s.write(payload));
  });
}

function parse(raw: string, elapsedMs: number): RawResponse {
  const end = raw.indexOf('\r\n\r\n');
  const head = end === -1 ? raw : raw.slice(0, end);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(statusLine.split(' ')[1] ?? 0), headers, body: end === -1 ? '' : raw.slice(end + 4), raw, elapsedMs };
}

/** The same parse rawRequest applies, for tests that drive a socket themselves. */
export { parse as parseRawResponse };
