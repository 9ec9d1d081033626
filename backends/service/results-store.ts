import { randomBytes } from 'node:crypto';
import { close, open as openFile, rename as renameFile, writev } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, rm, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';

/**
 * Processed images, kept for a TTL under unguessable ids. Two implementations keep the
 * same contract: this directory (local, or a shared mount such as NFS or GlusterFS) and
 * S3-compatible object storage (results-s3-store.ts). In both, the expiry is checked on
 * every read (an expired result is never served), a sweeper deletes what expired, only
 * outputs are stored (never inputs), and each sweep is logged with counts only.
 */
export interface ResultsStore {
  /** For logs: where results go (a path, or s3://bucket/prefix), never a credential. */
  readonly location: string;
  newId(): string;
  put(id: string, data: Buffer, contentType: string): Promise<void>;
  /** The result, or undefined when the id is malformed, unknown or expired. */
  get(id: string): Promise<StoredResult | undefined>;
  /** Deletes every expired result; resolves with the count. */
  sweep(): Promise<number>;
  /** For the audit gauges, as of the last sweep plus this process's writes since. */
  audit(): ResultsAudit;
  close(): Promise<void>;
}

export interface ResultsAudit {
  /** Age of the oldest result not yet expired, seconds; 0 when there is none. */
  readonly oldestLiveAgeSeconds: number;
  /** Results past their TTL that are still stored (the sweeper has not reached them, or failed to delete them). */
  readonly expiredNotDeleted: number;
}

/**
 * What the audit gauges read: the write times of the stored results, as the last sweep
 * saw them plus the writes since. Kept sorted, so a scrape is a binary search.
 */
export class ExpiryLedger {
  private times: number[] = [];
  private undeletable = 0;

  constructor(private readonly ttlMs: number, private readonly now: () => number) {}

  /** After a sweep: the write times of what is still stored (live, or expired and not deletable). */
  reset(liveWriteTimes: number[], undeletable: number): void {
    this.times = liveWriteTimes.sort((a, b) => a - b);
    this.undeletable = undeletable;
  }

  wrote(at: number): void {
    // Writes come in time order, so appending keeps the list sorted.
    if (this.times.length > 0 && at < this.times[this.times.length - 1]!) this.times.sort((a, b) => a - b);
    this.times.push(at);
  }

  audit(): ResultsAudit {
    const now = this.now();
    let lo = 0;
    let hi = this.times.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.times[mid]! + this.ttlMs <= now) lo = mid + 1;
      else hi = mid;
    }
    const oldest = this.times[lo];
    return { oldestLiveAgeSeconds: oldest === undefined ? 0 : Math.max(0, (now - oldest) / 1000), expiredNotDeleted: lo + this.undeletable };
  }
}

export interface SweepOptions {
  /** Default: a tenth of the TTL, between 1 s and 60 s. */
  readonly sweepIntervalMs?: number | undefined;
  readonly onSwept?: ((removed: number) => void) | undefined;
}

/** The sweeper of either store: an unref'd interval (it must never keep a finished process alive). */
export function sweepTimer(ttlMs: number, opts: SweepOptions, sweep: () => Promise<number>): NodeJS.Timeout {
  const interval = opts.sweepIntervalMs ?? Math.min(60_000, Math.max(1000, ttlMs / 10));
  const timer = setInterval(() => {
    void sweep().then((n) => opts.onSwept?.(n), () => {});
  }, interval);
  timer.unref();
  return timer;
}

/**
 * The directory implementation.
 *
 * The directory is the only source of truth (no in-memory index), so several backend
 * processes on one machine can share one directory and serve each other's results.
 * A file is `<id>`: one header line with the Content-Type, then the bytes. Its expiry
 * is its mtime + TTL, checked on every read, so an expired result is never served even
 * if the sweeper has not run yet; the sweeper only reclaims the space.
 */
export interface ResultsStoreOptions extends SweepOptions {
  /** Undefined: a fresh temp directory for this process, removed on close. */
  readonly dir: string | undefined;
  readonly ttlSeconds: number;
  readonly now?: () => number;
}

export interface StoredResult {
  readonly contentType: string;
  readonly size: number;
  readonly remainingSeconds: number;
  readonly stream: Readable;
}

// 128 random bits in base64url: 22 characters, no padding.
const ID_RE = /^[A-Za-z0-9_-]{22}$/;
const TMP_PREFIX = '.tmp-';
const MAX_HEADER = 256;

export function isResultId(id: string): boolean {
  return ID_RE.test(id);
}

/** What is left of `parts` after the first `written` bytes of them. */
export function unwritten(parts: readonly Buffer[], written: number): Buffer[] {
  const rest: Buffer[] = [];
  for (const p of parts) {
    if (written >= p.length) { written -= p.length; continue; }
    rest.push(written > 0 ? p.subarray(written) : p);
    written = 0;
  }
  return rest;
}

/**
 * `parts` into a new file `path` (0600), then renamed to `to`: open, one writev (more
 * only after a short write), close, rename, on fs's callback API. Every result goes
 * through here once per image; fs/promises' writeFile on the same data made a FileHandle,
 * a write per part and a promise per step, about 0.3 ms more of the main thread and the
 * libuv pool per image (load-tests/PROFILE.md, "The image path").
 */
function writeThenRename(path: string, parts: readonly Buffer[], to: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    openFile(path, 'w', 0o600, (openErr, fd) => {
      if (openErr !== null) { reject(openErr); return; }
      const closeThen = (writeErr: Error | null): void => close(fd, (closeErr) => {
        const err = writeErr ?? closeErr;
        if (err !== null) { reject(err); return; }
        renameFile(path, to, (renameErr) => { if (renameErr !== null) reject(renameErr); else resolve(); });
      });
      const writeAll = (rest: readonly Buffer[]): void => writev(fd, rest, (writeErr, n) => {
        if (writeErr !== null) { closeThen(writeErr); return; }
        const left = unwritten(rest, n);
        if (left.length === 0) closeThen(null);
        else writeAll(left);
      });
      writeAll(parts);
    });
  });
}

export class DirectoryResultsStore implements ResultsStore {
  readonly dir: string;
  readonly location: string;
  readonly ttlMs: number;
  private readonly ownsDir: boolean;
  private readonly now: () => number;
  private readonly timer: NodeJS.Timeout;
  private sweeping: Promise<number> | undefined;
  private closed = false;
  /** Writes in progress, which close() lets finish before it removes the directory. */
  private readonly writing = new Set<Promise<void>>();
  private readonly ledger: ExpiryLedger;

  private constructor(dir: string, ownsDir: boolean, opts: ResultsStoreOptions) {
    this.dir = dir;
    this.location = dir;
    this.ownsDir = ownsDir;
    this.ttlMs = opts.ttlSeconds * 1000;
    this.now = opts.now ?? Date.now;
    this.ledger = new ExpiryLedger(this.ttlMs, this.now);
    this.timer = sweepTimer(this.ttlMs, opts, () => this.sweep());
  }

  static async open(opts: ResultsStoreOptions): Promise<DirectoryResultsStore> {
    if (!(opts.ttlSeconds > 0)) throw new RangeError('ttlSeconds must be > 0');
    if (opts.dir === undefined) {
      const dir = await mkdtemp(join(tmpdir(), 'sluice-results-'));
      return new DirectoryResultsStore(dir, true, opts);
    }
    await mkdir(opts.dir, { recursive: true, mode: 0o700 });
    return new DirectoryResultsStore(opts.dir, false, opts);
  }

  audit(): ResultsAudit {
    return this.ledger.audit();
  }

  newId(): string {
    return randomBytes(16).toString('base64url');
  }

  /** Writes atomically (temp file + rename): a reader sees the whole result or none. */
  async put(id: string, data: Buffer, contentType: string): Promise<void> {
    if (!isResultId(id)) throw new Error('bad result id');
    if (!/^[\x21-\x7e]+(?:; ?[\x20-\x7e]+)?$/.test(contentType) || contentType.length > MAX_HEADER - 1) {
      throw new Error('bad content type');
    }
    if (this.closed) throw new Error('results store closed');
    const write = this.write(id, data, contentType);
    this.writing.add(write);
    try {
      await write;
    } finally {
      this.writing.delete(write);
    }
  }

  private async write(id: string, data: Buffer, contentType: string): Promise<void> {
    const tmp = join(this.dir, `${TMP_PREFIX}${id}-${randomBytes(6).toString('hex')}`);
    try {
      await writeThenRename(tmp, [Buffer.from(`${contentType}\n`, 'latin1'), data], join(this.dir, id));
      this.ledger.wrote(this.now());
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
  }

  /** The result, or undefined when the id is malformed, unknown or expired. */
  async get(id: string): Promise<StoredResult | undefined> {
    if (!isResultId(id) || this.closed) return undefined;
    const path = join(this.dir, id);
    let fh;
    try {
      fh = await open(path, 'r');
    } catch {
      return undefined;
    }
    try {
      const st = await fh.stat();
      const remainingMs = st.mtimeMs + this.ttlMs - this.now();
      if (remainingMs <= 0) {
        await fh.close();
        await unlink(path).catch(() => {});
        return undefined;
      }
      const head = Buffer.alloc(Math.min(MAX_HEADER, st.size));
      const { bytesRead } = await fh.read(head, 0, head.length, 0);
      const nl = head.subarray(0, bytesRead).indexOf(0x0a);
      if (nl <= 0) { await fh.close(); return undefined; }
      const contentType = head.subarray(0, nl).toString('latin1');
      const start = nl + 1;
      const stream = fh.createReadStream({ start, autoClose: true });
      return { contentType, size: st.size - start, remainingSeconds: Math.max(1, Math.floor(remainingMs / 1000)), stream };
    } catch {
      await fh.close().catch(() => {});
      return undefined;
    }
  }

  /** Deletes every expired result (and temp files left by a crash); resolves with the count. */
  sweep(): Promise<number> {
    // One sweep at a time: a slow disk must not stack up concurrent directory scans.
    this.sweeping ??= this.sweepOnce().finally(() => { this.sweeping = undefined; });
    return this.sweeping;
  }

  private async sweepOnce(): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return 0;
    }
    const cutoff = this.now() - this.ttlMs;
    let removed = 0;
    let undeletable = 0;
    const live: number[] = [];
    for (const name of names) {
      if (!isResultId(name) && !name.startsWith(TMP_PREFIX)) continue;
      const path = join(this.dir, name);
      let mtime: number;
      try {
        mtime = (await stat(path)).mtimeMs;
      } catch {
        continue; // gone already (another process sharing the directory swept it)
      }
      if (mtime > cutoff) {
        if (isResultId(name)) live.push(mtime);
        continue;
      }
      try {
        await unlink(path);
        removed++;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') undeletable++;
      }
    }
    this.ledger.reset(live, undeletable);
    return removed;
  }

  /**
   * Stops the sweeper; removes the directory if this store created it (nothing outlives the
   * process). A job that finished during shutdown may still be writing: its write ends
   * first, or removing the directory under it fails (ENOTEMPTY) and the backend exits 1.
   */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.sweeping?.catch(() => {});
    await Promise.allSettled(this.writing);
    if (this.ownsDir) await rm(this.dir, { recursive: true, force: true });
  }
}
