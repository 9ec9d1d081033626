import { DAY_MS } from './calendar.js';
import type { IdempotencyState, StoredResponse, UsageRow } from './types.js';

// The memory store's side of credits: daily usage, quota-threshold marks and
// idempotency records, each with the expiry the Redis store gives its keys
// (redis-credits.ts), swept as the memory store sweeps its buckets. One process only:
// nothing here survives a restart, which is what the Redis store is for.

interface IdemRecord {
  readonly fingerprint: string;
  token: string;
  response: StoredResponse | undefined;
  expiresAt: number;
}

const SWEEP_INTERVAL_MS = 60_000;

export class MemoryCredits {
  /** customer NUL day -> counters, and when the row goes. */
  private readonly usage = new Map<string, { row: UsageRow; expiresAt: number }>();
  private readonly marks = new Map<string, number>();
  private readonly idem = new Map<string, IdemRecord>();
  private nextSweepAt = 0;

  constructor(private readonly now: () => number) {}

  addUsage(rows: readonly UsageRow[], retentionDays: number): void {
    this.sweep();
    for (const r of rows) {
      const k = `${r.customer}\0${r.day}`;
      const had = this.usage.get(k);
      const counts: Record<string, number> = { ...had?.row.counts };
      for (const [name, n] of Object.entries(r.counts)) counts[name] = (counts[name] ?? 0) + n;
      this.usage.set(k, { row: { customer: r.customer, day: r.day, counts }, expiresAt: (r.day + 1 + retentionDays) * DAY_MS });
    }
  }

  readUsage(customer: string | undefined, fromDay: number, toDay: number): UsageRow[] {
    const now = this.now();
    return [...this.usage.values()]
      .filter((u) => u.expiresAt > now && u.row.day >= fromDay && u.row.day <= toDay && (customer === undefined || u.row.customer === customer))
      .map((u) => u.row)
      .sort((a, b) => a.day - b.day || (a.customer < b.customer ? -1 : a.customer > b.customer ? 1 : 0));
  }

  markOnce(name: string, ttlMs: number): boolean {
    this.sweep();
    const now = this.now();
    const until = this.marks.get(name);
    if (until !== undefined && until > now) return false;
    this.marks.set(name, now + ttlMs);
    return true;
  }

  idempotencyBegin(k: string, fingerprint: string, token: string, lockMs: number): IdempotencyState {
    this.sweep();
    const now = this.now();
    const r = this.idem.get(k);
    if (r === undefined || r.expiresAt <= now) {
      this.idem.set(k, { fingerprint, token, response: undefined, expiresAt: now + lockMs });
      return { kind: 'new' };
    }
    if (r.fingerprint !== fingerprint) return { kind: 'mismatch' };
    return r.response === undefined ? { kind: 'running' } : { kind: 'done', response: r.response };
  }

  idempotencyFinish(k: string, token: string, response: StoredResponse, ttlMs: number): void {
    const r = this.idem.get(k);
    if (r === undefined || r.token !== token) return;
    r.response = response;
    r.expiresAt = this.now() + ttlMs;
  }

  idempotencyAbandon(k: string, token: string): void {
    if (this.idem.get(k)?.token === token) this.idem.delete(k);
  }

  private sweep(): void {
    const now = this.now();
    if (now < this.nextSweepAt) return;
    this.nextSweepAt = now + SWEEP_INTERVAL_MS;
    for (const [k, u] of this.usage) if (u.expiresAt <= now) this.usage.delete(k);
    for (const [k, until] of this.marks) if (until <= now) this.marks.delete(k);
    for (const [k, r] of this.idem) if (r.expiresAt <= now) this.idem.delete(k);
  }
}
