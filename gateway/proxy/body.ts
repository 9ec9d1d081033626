import type { IncomingMessage } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import type { RequestContext } from '../pipeline/context.js';
import { PayloadTooLarge } from './upstream-errors.js';

/** The request body as the attempts of one proxied request see it. */
export interface BodySource {
  /** The body to hand the next attempt's dispatch. */
  next(): Buffer | Transform | null;
  /** Whether the body could be sent again after the attempt that took the last next(). */
  replayable(): boolean;
}

export const NO_BODY: BodySource = { next: () => null, replayable: () => true };

/**
 * The client's body, streamed to the first attempt as it arrives (an upstream may answer
 * before it has all of it), with a copy kept while it stays within `keep` bytes. A retry
 * can send it again when the copy is whole (the body ended within `keep`), or when the
 * failed attempt never read from it, which is what a connect failure leaves behind: the
 * client's request is piped in on undici's first read, so until then it is untouched and
 * a fresh counter can take it.
 */
export class RequestBody implements BodySource {
  private current: MeteredBody | undefined;
  private copy: Buffer | null = null;

  constructor(private readonly ctx: RequestContext, private readonly req: IncomingMessage, private readonly limit: number, private readonly keep: number) {}

  next(): Buffer | Transform {
    if (this.copy === null && this.current?.whole()) this.copy = this.current.copy();
    if (this.copy !== null) return this.copy;
    this.current = new MeteredBody(this.ctx, this.req, this.limit, this.keep);
    return this.current;
  }

  replayable(): boolean {
    return this.copy !== null || this.current === undefined || !this.current.pulled || this.current.whole();
  }
}

/**
 * The request body as undici sees it: the client's request piped through a counter that
 * fails once more than `limit` bytes arrived (a chunked body declares no size; a declared
 * one was checked already and the parser holds the client to it).
 *
 * undici destroys the stream it is handed when the upstream fails. Handing it this one
 * rather than the request leaves the request whole (pipe() never destroys its source),
 * so the rest of the body can still be drained while the client reads its answer
 * (lingerClose); a destroyed request would stall the connection instead.
 */
class MeteredBody extends Transform {
  pulled = false;
  private kept: Buffer[] | null = [];
  private keptBytes = 0;
  private ended = false;

  constructor(private readonly ctx: RequestContext, private readonly req: IncomingMessage, private readonly limit: number, private readonly keep: number) {
    super();
  }

  /** The body arrived in full and within `keep` bytes. */
  whole(): boolean {
    return this.ended && this.kept !== null;
  }

  copy(): Buffer {
    return Buffer.concat(this.kept!);
  }

  override _read(size: number): void {
    if (!this.pulled) {
      this.pulled = true;
      this.req.pipe(this);
    }
    super._read(size);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.ctx.bytesIn += chunk.length;
    if (this.ctx.bytesIn > this.limit) return done(new PayloadTooLarge(this.limit));
    if (this.kept !== null) {
      this.keptBytes += chunk.length;
      if (this.keptBytes <= this.keep) this.kept.push(chunk);
      else this.kept = null; // too large to replay: stop holding on to it
    }
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    this.ended = true;
    done();
  }
}
