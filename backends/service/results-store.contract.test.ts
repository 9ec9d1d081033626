// One contract, both results stores: the directory and S3-compatible storage (a real
// s3rver on loopback). Expiry is checked on read, the sweeper deletes, a second store
// on the same directory or bucket serves what the first wrote, and the audit gauges
// see expired results until they are deleted.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { S3_CREDENTIALS, startS3, type S3Server } from '../../test/harness/s3.js';
import { S3ResultsStore } from './results-s3-store.js';
import { DirectoryResultsStore, type ResultsStore } from './results-store.js';

const BUCKET = 'results-contract';
let s3: S3Server;
let dir: string;

before(async () => {
  s3 = await startS3([BUCKET]);
  dir = await mkdtemp(join(tmpdir(), 'sluice-contract-'));
});
after(async () => {
  await s3?.stop();
  await rm(dir, { recursive: true, force: true });
});

type Open = (ttlSeconds: number, now: () => number, prefix: string) => Promise<ResultsStore>;
const stores: Record<string, Open> = {
  directory: (ttlSeconds, now, prefix) => DirectoryResultsStore.open({ dir: join(dir, prefix), ttlSeconds, now, sweepIntervalMs: 3_600_000 }),
  s3: async (ttlSeconds, now, prefix) => new S3ResultsStore({
    s3: { bucket: BUCKET, region: 'us-east-1', prefix: `${prefix}/`, endpoint: s3.endpoint, forcePathStyle: true },
    credentials: { ...S3_CREDENTIALS }, ttlSeconds, now, sweepIntervalMs: 3_600_000,
  }),
};

for (const [kind, open] of Object.entries(stores)) {
  describe(`results store contract: ${kind}`, { timeout: 30_000 }, () => {
    it('a second store on the same storage serves what the first wrote, with its type and remaining TTL', async () => {
      const a = await open(100, Date.now, 'shared');
      const b = await open(100, Date.now, 'shared');
      try {
        const id = a.newId();
        await a.put(id, Buffer.from('png bytes'), 'image/png');
        const got = await b.get(id);
        assert.ok(got, 'served by the other store');
        assert.equal(got.contentType, 'image/png');
        assert.equal(got.size, 9);
        assert.ok(got.remainingSeconds >= 95 && got.remainingSeconds <= 100, String(got.remainingSeconds));
        assert.equal(await text(got.stream), 'png bytes');
        assert.equal(await b.get(b.newId()), undefined, 'unknown id');
        assert.equal(await b.get('../../etc/passwd'), undefined, 'not an id');
      } finally {
        await a.close();
        await b.close();
      }
    });

    it('never serves an expired result, the sweeper deletes it, and the audit gauges show it until then', async () => {
      // The storage's own clock (mtime, LastModified) decides expiry, so this runs on real time with a short TTL.
      const TTL_S = 3;
      const store = await open(TTL_S, Date.now, 'expiry');
      const until = (t: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())));
      try {
        const old = store.newId();
        await store.put(old, Buffer.from('old'), 'image/jpeg');
        const oldAt = Date.now();
        assert.equal(store.audit().expiredNotDeleted, 0);
        await until(oldAt + TTL_S * 1000 + 100);
        assert.equal(store.audit().expiredNotDeleted, 1, 'expired, not deleted yet');
        const fresh = store.newId();
        await store.put(fresh, Buffer.from('fresh'), 'image/jpeg');
        const freshAt = Date.now();
        assert.ok(store.audit().oldestLiveAgeSeconds < TTL_S, 'the oldest live one is the fresh one');
        assert.equal(await store.sweep(), 1);
        assert.equal(store.audit().expiredNotDeleted, 0);
        assert.equal(await store.get(old), undefined);
        const got = await store.get(fresh);
        assert.ok(got, 'the live one survives the sweep');
        got.stream.destroy();
        await until(freshAt + TTL_S * 1000 + 100);
        assert.equal(await store.get(fresh), undefined, 'expired on read, before any sweep');
        assert.equal(await store.sweep(), 0, 'the read deleted it already');
        assert.deepEqual(store.audit(), { oldestLiveAgeSeconds: 0, expiredNotDeleted: 0 });
      } finally {
        await store.close();
      }
    });
  });
}
