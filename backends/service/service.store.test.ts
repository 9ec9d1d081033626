// The `store` option: the output written into the customer's own bucket, against a real
// S3-compatible server (s3rver) on loopback and a real sluice-backend process allowed to
// reach 127.0.0.1. Credentials must never come back in an answer or a log line.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { request } from 'undici';
import { freePort } from '../../test/harness/ports.js';
import { S3_CREDENTIALS, startS3, type S3Server } from '../../test/harness/s3.js';
import { spawnImageBackend, type BackendProcess } from '../../test/harness/webhooks.js';
import { photo } from '../image/fixtures.js';
import { ImageError } from '../image/types.js';
import { putToCustomerBucket } from '../net/customer-bucket.js';

const BUCKET = 'customer-bucket';
let s3: S3Server;
let backend: BackendProcess;

before(async () => {
  s3 = await startS3([BUCKET]);
  backend = await spawnImageBackend(['--fetch-allow', '127.0.0.1', '--fetch-timeout-ms', '3000']);
});
after(async () => {
  await backend?.stop();
  await s3?.stop();
});

function storeOpt(over: Record<string, unknown> = {}, creds: Record<string, unknown> = {}): Record<string, unknown> {
  return { provider: 's3', bucket: BUCKET, region: 'us-east-1', path: 'out/photo.webp', endpoint: s3.endpoint, credentials: { ...S3_CREDENTIALS, ...creds }, ...over };
}

async function post(store: unknown): Promise<{ status: number; text: string }> {
  const res = await request(`${backend.url}/v1/images`, {
    method: 'POST', body: photo(), headers: { 'x-options': JSON.stringify({ resize: { width: 64 }, format: 'webp', store }) },
  });
  return { status: res.statusCode, text: await res.body.text() };
}

const SECRETS = [S3_CREDENTIALS.secretAccessKey, 'secret-of-a-customer'];
function assertNoSecret(where: string, text: string): void {
  for (const s of SECRETS) assert.ok(!text.includes(s), `${where} contains a secret`);
}

describe('store: results into the customer\'s bucket', { timeout: 180_000 }, () => {
  it('writes the output to bucket/path and answers where, not how', async () => {
    const r = await post(storeOpt());
    assert.equal(r.status, 200, r.text);
    const body = JSON.parse(r.text) as { output: { bytes: number; url: string }; store: unknown };
    assert.deepEqual(body.store, { provider: 's3', bucket: BUCKET, path: 'out/photo.webp' });
    assertNoSecret('the answer', r.text);
    const client = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { ...S3_CREDENTIALS } });
    try {
      const obj = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'out/photo.webp' }));
      const bytes = Buffer.from(await obj.Body!.transformToByteArray());
      assert.equal(obj.ContentType, 'image/webp');
      assert.equal(bytes.length, body.output.bytes);
      const temp = await request(`${backend.url}${body.output.url}`);
      assert.ok(Buffer.from(await temp.body.arrayBuffer()).equals(bytes), 'the temporary result too, same bytes');
    } finally {
      client.destroy();
    }
  });

  it('store.temporary: false makes the bucket the only copy: no temporary result, no url', async () => {
    const r = await post(storeOpt({ path: 'only/photo.webp', temporary: false }));
    assert.equal(r.status, 200, r.text);
    const body = JSON.parse(r.text) as { id: string; output: { bytes: number; url?: string } };
    assert.equal(body.output.url, undefined, 'no temporary result to point at');
    const temp = await request(`${backend.url}/v1/results/${body.id}`);
    await temp.body.dump();
    assert.equal(temp.statusCode, 404, 'nothing kept for an hour');
    const client = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { ...S3_CREDENTIALS } });
    try {
      const obj = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'only/photo.webp' }));
      assert.equal(Buffer.from(await obj.Body!.transformToByteArray()).length, body.output.bytes);
    } finally {
      client.destroy();
    }
    const bad = await post(storeOpt({ temporary: 'no' }));
    assert.equal(bad.status, 400);
    assert.equal((JSON.parse(bad.text) as { error: { field: string } }).error.field, 'store.temporary');
  });

  it('maps what the bucket answers to clear JSON errors, echoing no credential', async () => {
    const cases: Array<[unknown, number, string, RegExp]> = [
      // s3rver checks that the access key exists but not SigV4 signatures, so a wrong secret cannot be shown here.
      [storeOpt({}, { accessKeyId: 'NOBODY', secretAccessKey: 'secret-of-a-customer' }), 422, 'store_rejected', /does not know the access key/],
      [storeOpt({ bucket: 'no-such-bucket' }), 422, 'store_rejected', /does not exist/],
      [storeOpt({ endpoint: `http://127.0.0.1:${await freePort()}` }), 502, 'store_unavailable', /could not be reached/],
      [storeOpt({ provider: 'gcs' }), 400, 'bad_request', /store\.provider/],
      [storeOpt({ path: '/abs' }), 400, 'bad_request', /store\.path/],
      [storeOpt({ endpoint: 'http://u:p@127.0.0.1:1' }), 400, 'bad_request', /store\.endpoint/],
      [{ ...storeOpt(), credentials: undefined }, 400, 'bad_request', /store\.credentials/],
      [storeOpt({}, { secretAccessKey: 42 }), 400, 'bad_request', /store\.credentials\.secretAccessKey/],
    ];
    for (const [store, status, code, message] of cases) {
      const r = await post(store);
      assert.equal(r.status, status, `${JSON.stringify(store)}: ${r.text}`);
      const e = (JSON.parse(r.text) as { error: { code: string; message: string; field?: string } }).error;
      assert.equal(e.code, code, r.text);
      assert.match(`${e.field} ${e.message}`, message);
      assertNoSecret('an error answer', r.text);
    }
    assertNoSecret('the backend log', JSON.stringify(backend.lines) + backend.stderr());
  });

  it('a customer endpoint is reached under the SSRF guard: loopback is refused unless allowed', async () => {
    const target = { provider: 's3' as const, bucket: BUCKET, region: 'us-east-1', path: 'x', endpoint: s3.endpoint, temporary: true, credentials: { ...S3_CREDENTIALS, sessionToken: undefined } };
    await assert.rejects(putToCustomerBucket(target, Buffer.from('x'), 'image/png', { allow: [], timeoutMs: 3000 }),
      (e: unknown) => e instanceof ImageError && e.code === 'forbidden_destination' && e.field === 'store.endpoint');
    await putToCustomerBucket(target, Buffer.from('x'), 'image/png', { allow: ['127.0.0.1'], timeoutMs: 3000 });
  });
});
