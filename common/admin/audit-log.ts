import type { RedisClient } from '../redis-client.js';

// Who changed what through an admin API, and when. Both admin listeners (the gateway's
// and sluice-webhooks') append here; `GET /admin/audit` and `sluice admin audit` list it.
// An entry names the admin token by its label and the thing changed by an id (a customer,
// the first 12 hex of a key digest, a webhook id): never a token, a key or a digest of
// either in full.

export interface AuditEvent {
  /** What was done, `thing.verb`: `key.create`, `customer.put`, `dead_letter.replay`... */
  readonly action: string;
  /** What it was done to. */
  readonly target: string;
  /** The request's own fields, secrets left out. */
  readonly details?: Readonly<Record<string, unknown>>;
}

export interface AuditEntry extends Required<AuditEvent> {
  /** Ordered: newer entries have larger ids (the Redis stream id, `<ms>-<seq>`). */
  readonly id: string;
  readonly at: string;
  /** The label of the admin token used. */
  readonly actor: string;
  /** Which admin API: `gateway` or `webhooks`. */
  readonly source: string;
  readonly peer: string;
  readonly request_id: string;
}

export interface AuditQuery {
  readonly limit: number;
  /** Only entries older than this id (paging backwards). */
  readonly before?: string | undefined;
  readonly actor?: string | undefined;
  readonly action?: string | undefined;
}

export interface AuditLog {
  append(entry: Omit<AuditEntry, 'id'>): Promise<void>;
  /** Newest first. */
  list(q: AuditQuery): Promise<AuditEntry[]>;
}

function matches(e: AuditEntry, q: AuditQuery): boolean {
  return (q.actor === undefined || e.actor === q.actor) && (q.action === undefined || e.action === q.action);
}

/** `<ms>-<seq>` ids compare by their two numbers. */
function idBefore(a: string, b: string): boolean {
  const [am, as] = a.split('-').map(Number) as [number, number];
  const [bm, bs] = b.split('-').map(Number) as [number, number];
  return am < bm || (am === bm && as < bs);
}

/** The memory store's log: one process, entries older than retentionMs dropped, at most maxEntries kept. */
export class MemoryAuditLog implements AuditLog {
  private readonly entries: AuditEntry[] = [];
  private lastMs = 0;
  private seq = 0;

  constructor(private readonly retentionMs: number, private readonly maxEntries = 100_000, private readonly now: () => number = Date.now) {}

  async append(entry: Omit<AuditEntry, 'id'>): Promise<void> {
    const ms = Math.max(this.now(), this.lastMs);
    this.seq = ms === this.lastMs ? this.seq + 1 : 0;
    this.lastMs = ms;
    this.entries.push({ ...entry, id: `${ms}-${this.seq}` });
    this.trim(ms);
  }

  async list(q: AuditQuery): Promise<AuditEntry[]> {
    this.trim(this.now());
    const out: AuditEntry[] = [];
    for (let i = this.entries.length - 1; i >= 0 && out.length < q.limit; i--) {
      const e = this.entries[i]!;
      if (q.before !== undefined && !idBefore(e.id, q.before)) continue;
      if (matches(e, q)) out.push(e);
    }
    return out;
  }

  private trim(now: number): void {
    let drop = Math.max(0, this.entries.length - this.maxEntries);
    while (drop < this.entries.length && Number(this.entries[drop]!.id.split('-')[0]) < now - this.retentionMs) drop++;
    if (drop > 0) this.entries.splice(0, drop);
  }
}

// Entries older than ARGV[2] ms (by the stream id, which is Redis's clock) are trimmed as the entry is added.
const APPEND_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('XADD', KEYS[1], 'MINID', '~', now - tonumber(ARGV[2]), '*', 'e', ARGV[1])
return 1
`;

type AuditClient = RedisClient & { sluiceAuditAppend(key: string, entry: string, retentionMs: number): Promise<number> };

/** A Redis stream (`<prefix>audit`), shared by every gateway and sluice-webhooks process on that Redis. */
export class RedisAuditLog implements AuditLog {
  private readonly client: AuditClient;

  constructor(client: RedisClient, private readonly key: string, private readonly retentionMs: number) {
    this.client = client as AuditClient;
    if (typeof this.client.sluiceAuditAppend !== 'function') client.defineCommand('sluiceAuditAppend', { numberOfKeys: 1, lua: APPEND_LUA });
  }

  async append(entry: Omit<AuditEntry, 'id'>): Promise<void> {
    await this.client.sluiceAuditAppend(this.key, JSON.stringify(entry), this.retentionMs);
  }

  async list(q: AuditQuery): Promise<AuditEntry[]> {
    const out: AuditEntry[] = [];
    let end = q.before === undefined ? '+' : `(${q.before}`;
    const floor = `${Date.now() - this.retentionMs}-0`;
    // Filtered entries are skipped page by page, so a filter never returns short while older matches remain.
    for (;;) {
      const page = await this.client.xrevrange(this.key, end, floor, 'COUNT', Math.max(100, q.limit));
      for (const [id, fields] of page) {
        const text = fields[1];
        if (text === undefined) continue;
        const e = { ...(JSON.parse(text) as Omit<AuditEntry, 'id'>), id };
        if (matches(e, q)) out.push(e);
        if (out.length >= q.limit) return out;
      }
      if (page.length < Math.max(100, q.limit)) return out;
      end = `(${page.at(-1)![0]}`;
    }
  }
}
