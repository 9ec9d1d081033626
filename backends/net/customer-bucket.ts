// The `store` option: the output PUT into the customer's own S3 (or S3-compatible)
// bucket with the customer's credentials. Every connection goes through the SSRF guard
// (a customer-chosen endpoint is a server-side request like /v1/images/fetch), the
// credentials live only in this call, and what the bucket answers is mapped to our
// error codes without echoing its message (which could quote what was sent).

import { ImageError, type CustomerStore } from '../image/types.js';
import { guardedAgents } from './guarded-agent.js';
import type { GuardOptions } from './safe-fetch.js';

export interface CustomerBucketOptions extends GuardOptions {
  readonly timeoutMs: number;
}

// S3 error codes that mean the customer's bucket or credentials are wrong: their fix, so 422.
const CUSTOMER_ERRORS: Readonly<Record<string, string>> = {
  NoSuchBucket: 'the bucket does not exist',
  AccessDenied: 'the bucket refused the credentials (AccessDenied)',
  InvalidAccessKeyId: 'the bucket does not know the access key',
  SignatureDoesNotMatch: 'the secret key does not match the access key',
  ExpiredToken: 'the session token has expired',
  InvalidToken: 'the session token is not valid',
  PermanentRedirect: 'the bucket is in another region; set store.region',
  AuthorizationHeaderMalformed: 'the bucket is in another region; set store.region',
  InvalidBucketName: 'the bucket name is not valid',
  AllAccessDisabled: 'access to the bucket is disabled',
};

export async function putToCustomerBucket(target: CustomerStore, data: Buffer, contentType: string, opts: CustomerBucketOptions): Promise<void> {
  const { S3Client, PutObjectCommand } = await import('@aws-sdk/client-s3');
  const client = new S3Client({
    region: target.region,
    ...(target.endpoint !== undefined ? { endpoint: target.endpoint, forcePathStyle: true } : {}),
    credentials: { ...target.credentials },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 2,
    requestHandler: { ...guardedAgents(opts, opts.timeoutMs), connectionTimeout: opts.timeoutMs, requestTimeout: opts.timeoutMs },
  });
  try {
    await client.send(new PutObjectCommand({ Bucket: target.bucket, Key: target.path, Body: data, ContentType: contentType }), {
      abortSignal: AbortSignal.timeout(opts.timeoutMs),
    });
  } catch (err) {
    throw bucketError(err);
  } finally {
    client.destroy();
  }
}

function bucketError(err: unknown): ImageError {
  if (err instanceof ImageError) {
    // The guard's verdict on the endpoint (forbidden_destination, could not resolve).
    return ImageError.restated(err, `store.endpoint: ${err.message}`, 'store.endpoint');
  }
  const e = err as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number }; cause?: unknown };
  if (e.cause instanceof ImageError) return bucketError(e.cause);
  const code = typeof e.Code === 'string' ? e.Code : e.name ?? '';
  const known = CUSTOMER_ERRORS[code];
  if (known !== undefined) return new ImageError(422, 'store_rejected', `store: ${known}`, 'store');
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    return new ImageError(422, 'store_rejected', `store: the bucket refused the write (HTTP ${status}${/^[A-Za-z]{1,64}$/.test(code) ? `, ${code}` : ''})`, 'store');
  }
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return new ImageError(504, 'store_timeout', 'store: the bucket did not answer in time', 'store');
  return new ImageError(502, 'store_unavailable', `store: the bucket could not be reached${status !== undefined ? ` (HTTP ${status})` : ''}`, 'store');
}
