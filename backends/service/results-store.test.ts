import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import { DirectoryResultsStore, isResultId, unwritten } from './results-store.js';

describe('DirectoryResultsStore', () => {
  it('stores under 128-bit base64url ids and serves the bytes with their type and remaining TTL', async () => {
    const store = await DirectoryResultsStore.open({ dir: undefined, ttlSeconds: 100 });
    try {
      const id = store.newId();
      assert.ok(isResultId(id));
      assert.equal(Buffer.from(id, 'base64url').length, 16);
      assert.notEqual(store.newId(), id);
      await store.put(id, Buffer.from('hello'), 'image/png');
      const got = await store.get(id);
      assert.ok(got);
      assert.equal(got.contentType, 'image/png');
      assert.equal(got.size, 5);
      assert.ok(got.remainingSeconds >= 99 && got.remainingSeconds <= 100);
      assert.equal(await text(got.stream), 'hello');
      assert.deepEqual(readdirSync(store.dir), [id], 'no temp files left behind');
    } finally {
      await store.close();
    }
  });

  it('never serves an expired result, even before the sweeper runs, and deletes it on read', async () => {
    let now = Date.now();
    const store = await DirectoryResultsStore.open({ dir: undefined, ttlSeconds: 10, sweepIntervalMs: 3_600_000, now: () => now });
    try {
      const id = store.newId();
      await store.put(id, Buffer.from('x'), 'image/jpeg');
      assert.ok(await store.get(id).then((r) => { r?.stream.destroy(); return r; }));
      // From the file's own mtime: on a loaded machine the write can land well after `now` was read.
      now = statSync(join(store.dir, id)).mtimeMs + 10_001;
      assert.equal(await store.get(id), undefined);
      assert.equal(existsSync(join(store.dir, id)), false);
    } finally {
      await store.close();
    }
  });

  it('the sweeper deletes expired results and stale temp files, and keeps live ones', async () => {
    let now = Date.now();
    const store = await DirectoryResultsStore.open({ dir: undefined, ttlSeconds: 10, sweepIntervalMs: 3_600_000, now: () => now });
    try {
      const old = store.newId();
      await store.put(old, Buffer.from('old'), 'image/webp');
      await writeFile(join(store.dir, '.tmp-crashed'), 'partial');
      await writeFile(join(store.dir, 'not-ours.txt'), 'keep');
      now = Math.max(...['.tmp-crashed', old].map((f) => statSync(join(store.dir, f)).mtimeMs)) + 10_001;
      const fresh = store.newId();
      // Written "now" by the real clock, i.e. 10 s before the store's clock: give it an mtime in the future instead.
      await store.put(fresh, Buffer.from('new'), 'image/webp');
      const { utimes } = await import('node:fs/promises');
      await utimes(join(store.dir, fresh), now / 1000, now / 1000);
      assert.equal(await store.sweep(), 2);
      assert.deepEqual(readdirSync(store.dir).sort(), [fresh, 'not-ours.txt'].sort());
    } finally {
      await store.close();
    }
  });

  it('malformed and unknown ids are not found', async () => {
    const store = await DirectoryResultsStore.open({ dir: undefined, ttlSeconds: 10 });
    try {
      for (const id of ['', 'x', '../../etc/passwd', 'A'.repeat(21), 'A'.repeat(23), 'AAAAAAAAAAAAAAAAAAAA/A', store.newId()]) {
        assert.equal(await store.get(id), undefined, id);
      }
    } finally {
      await store.close();
    }
  });

  it('close lets writes in progress finish, then removes its directory; a put after close is refused', async () => {
    // A job finishing during shutdown: its result is still being written when close starts.
    const store = await DirectoryResultsStore.open({ dir: undefined, ttlSeconds: 10 });
    const puts = Array.from({ length: 8 }, () => store.put(store.newId(), Buffer.alloc(4 << 20, 7), 'image/png'));
    await store.close();
    const settled = await Promise.allSettled(puts);
    assert.deepEqual(settled.map((p) => p.status), puts.map(() => 'fulfilled'));
    assert.equal(existsSync(store.dir), false);
    await assert.rejects(store.put(store.newId(), Buffer.from('late'), 'image/png'), /closed/);
  });

  it('a temp directory it created is removed on close; a configured one is kept', async () => {
    const a = await DirectoryResultsStore.open({ dir: undefined, ttlSeconds: 10 });
    await a.close();
    assert.equal(existsSync(a.dir), false);
    const dir = await mkdtemp(join(tmpdir(), 'sluice-store-test-'));
    try {
      const b = await DirectoryResultsStore.open({ dir: join(dir, 'nested'), ttlSeconds: 10 });
      await b.close();
      assert.equal(existsSync(join(dir, 'nested')), true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('unwritten (what a short writev leaves)', () => {
  const parts = [Buffer.from('image/png\n'), Buffer.from('0123456789')];
  it('drops the parts written whole and cuts the one written in part', () => {
    assert.deepEqual(unwritten(parts, 0).map(String), ['image/png\n', '0123456789']);
    assert.deepEqual(unwritten(parts, 4).map(String), ['e/png\n', '0123456789']);
    assert.deepEqual(unwritten(parts, 10).map(String), ['0123456789']);
    assert.deepEqual(unwritten(parts, 13).map(String), ['3456789']);
    assert.deepEqual(unwritten(parts, 20), []);
  });
});
