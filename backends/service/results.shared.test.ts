// Results that outlive one backend: two real sluice-backend processes on one shared
// directory, and two on one S3 bucket (a real s3rver on loopback). Backend A writes
// the result; the GET goes through the real gateway, whose only target is backend B.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { sha256, testConfig } from '../../test/harness/config.js';
import { spawnGateway } from '../../test/harness/gateway.js';
import { S3_ENV, startS3, type S3Server } from '../../test/harness/s3.js';
import { spawnImageBackend, type BackendProcess } from '../../test/harness/webhooks.js';
import { photo } from '../image/fixtures.js';

const KEY = 'k-shared-results';
const BUCKET = 'shared-results';
let s3: S3Server;
let dir: string;

before(async () => {
  s3 = await startS3([BUCKET]);
  dir = await mkdtemp(join(tmpdir(), 'sluice-shared-'));
});
after(async () => {
  await s3?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function resultsServed(b: BackendProcess): Promise<number> {
  const text = await (await request(`${b.url}/metrics`)).body.text();
  return Number(/^sluice_backend_requests_total\{endpoint="results",status="200"\} (\d+)$/m.exec(text)?.[1] ?? 0);
}

const setups: Record<string, () => { args: string[]; env: NodeJS.ProcessEnv }> = {
  'a shared directory': () => ({ args: ['--results-dir', dir], env: {} }),
  'one S3 bucket': () => ({
    args: ['--results-s3-bucket', BUCKET, '--results-s3-endpoint', s3.endpoint, '--results-s3-path-style', '--results-s3-prefix', 'r/'],
    env: S3_ENV,
  }),
};

for (const [name, setup] of Object.entries(setups)) {
  describe(`results on ${name}`, { timeout: 60_000 }, () => {
    it('a result written by one backend is served through the gateway by another', async () => {
      const { args, env } = setup();
      const a = await spawnImageBackend(args, env);
      const b = await spawnImageBackend(args, env);
      const gw = await spawnGateway(testConfig({
        upstreams: [b.url],
        keys: [{ digest: sha256(KEY), customer: 'acme', plan: 'test' }],
        log: { access: false },
      }));
      try {
        const res = await request(`${a.url}/v1/images`, { method: 'POST', body: photo(), headers: { 'x-options': '{"resize":{"width":80},"format":"webp"}', accept: 'image/*' } });
        assert.equal(res.statusCode, 200);
        const written = Buffer.from(await res.body.arrayBuffer());
        const url = String(res.headers['content-location']);
        const got = await request(`${gw.url}${url}`, { headers: { 'x-api-key': KEY } });
        const served = Buffer.from(await got.body.arrayBuffer());
        assert.equal(got.statusCode, 200, served.toString());
        assert.equal(got.headers['content-type'], 'image/webp');
        assert.ok(served.equals(written), 'the same bytes');
        assert.equal(await resultsServed(b), 1, 'served by B');
        assert.equal(await resultsServed(a), 0, 'not by A, which wrote it');
        const missing = await request(`${gw.url}/v1/results/${'A'.repeat(22)}`, { headers: { 'x-api-key': KEY } });
        assert.equal(missing.statusCode, 404);
        assert.equal(((await missing.body.json()) as { error: { code: string } }).error.code, 'not_found');
      } finally {
        await gw.stop();
        await a.stop();
        await b.stop();
      }
    });
  });
}
