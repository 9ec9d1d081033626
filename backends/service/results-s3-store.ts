import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ExpiryLedger, isResultId, sweepTimer, type ResultsAudit, type ResultsStore, type StoredResult, type SweepOptions } from './results-store.js';

/** Where results go in S3-compatible storage; credentials come from the SDK's usual chain (AWS_* env, profile, role). */
export interface S3ResultsConfig {
  readonly bucket: string;
  readonly region: string;
  /** Key prefix, e.g. `results/`. */
  readonly prefix: string;
  /** For S3-compatible servers (MinIO, Ceph, s3rver): their origin; undefined for AWS. */
  readonly endpoint: string | undefined;
  /** Path-style URLs (http://host/bucket/key): what most S3-compatible servers need. */
  readonly forcePathStyle: boolean;
}

export interface S3ResultsStoreOptions extends SweepOptions {
  readonly s3: S3ResultsConfig;
  readonly ttlSeconds: number;
  readonly now?: () => number;
  /** Tests: static credentials for the local server. */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string } | undefined;
}

// Every backend sharing the bucket serves every result: the bucket is the only index,
// like the shared directory. The expiry is the object's LastModified (the storage's
// clock, the same for every backend) + TTL. A PUT is atomic, so a reader sees a whole
// result or none. S3 lifecycle rules count in whole days, so they cannot keep a one-hour
// contract: the sweeper lists and deletes, and a lifecycle rule is only a backstop.
export class S3ResultsStore implements ResultsStore {
  readonly location: string;
  private readonly client: S3Client;
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly ledger: ExpiryLedger;
  private readonly timer: NodeJS.Timeout;
  private sweeping: Promise<number> | undefined;
  private closed = false;

  constructor(private readonly opts: S3ResultsStoreOptions) {
    if (!(opts.ttlSeconds > 0)) throw new RangeError('ttlSeconds must be > 0');
    this.location = `s3://${opts.s3.bucket}/${opts.s3.prefix}`;
    this.ttlMs = opts.ttlSeconds * 1000;
    this.now = opts.now ?? Date.now;
    this.ledger = new ExpiryLedger(this.ttlMs, this.now);
    this.client = new S3Client({
      region: opts.s3.region,
      ...(opts.s3.endpoint !== undefined ? { endpoint: opts.s3.endpoint } : {}),
      forcePathStyle: opts.s3.forcePathStyle,
      ...(opts.credentials !== undefined ? { credentials: { ...opts.credentials } } : {}),
      // Checksums only where S3 requires them: many S3-compatible servers reject the
      // newer default checksum headers and trailers.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 3,
    });
    this.timer = sweepTimer(this.ttlMs, opts, () => this.sweep());
  }

  newId(): string {
    return randomBytes(16).toString('base64url');
  }

  private key(id: string): string {
    return `${this.opts.s3.prefix}${id}`;
  }

  async put(id: string, data: Buffer, contentType: string): Promise<void> {
    if (!isResultId(id)) throw new Error('bad result id');
    await this.client.send(new PutObjectCommand({ Bucket: this.opts.s3.bucket, Key: this.key(id), Body: data, ContentType: contentType }));
    this.ledger.wrote(this.now());
  }

  async get(id: string): Promise<StoredResult | undefined> {
    if (!isResultId(id) || this.closed) return undefined;
    let res;
    try {
      res = await this.client.send(new GetObjectCommand({ Bucket: this.opts.s3.bucket, Key: this.key(id) }));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    const body = res.Body as Readable | undefined;
    const written = res.LastModified?.getTime();
    const remainingMs = written === undefined ? 0 : written + this.ttlMs - this.now();
    if (body === undefined || remainingMs <= 0) {
      body?.destroy();
      if (remainingMs <= 0) await this.delete(id).catch(() => {});
      return undefined;
    }
    return {
      contentType: res.ContentType ?? 'application/octet-stream',
      size: res.ContentLength ?? 0,
      remainingSeconds: Math.max(1, Math.floor(remainingMs / 1000)),
      stream: body,
    };
  }

  private async delete(id: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.opts.s3.bucket, Key: this.key(id) }));
  }

  sweep(): Promise<number> {
    this.sweeping ??= this.sweepOnce().finally(() => { this.sweeping = undefined; });
    return this.sweeping;
  }

  private async sweepOnce(): Promise<number> {
    const cutoff = this.now() - this.ttlMs;
    let removed = 0;
    let undeletable = 0;
    const live: number[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.opts.s3.bucket, Prefix: this.opts.s3.prefix, ContinuationToken: token }));
      for (const o of page.Contents ?? []) {
        const id = o.Key?.slice(this.opts.s3.prefix.length) ?? '';
        const written = o.LastModified?.getTime();
        if (!isResultId(id) || written === undefined) continue;
        if (written > cutoff) { live.push(written); continue; }
        try {
          await this.delete(id);
          removed++;
        } catch {
          undeletable++;
        }
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    this.ledger.reset(live, undeletable);
    return removed;
  }

  audit(): ResultsAudit {
    return this.ledger.audit();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.sweeping?.catch(() => {});
    this.client.destroy();
  }
}

export function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
}
