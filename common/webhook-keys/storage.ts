import { randomBytes, createHash } from 'node:crypto';
import { link, mkdir, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RedisClient } from '../redis-client.js';
import { scanAll } from '../redis-scan.js';

// Where each customer's sealed webhook keys are kept: one text per customer, created once
// and then replaced only when it is still what the writer read (so two rotations never
// both win). In Redis beside the gateway's limits (every gateway, backend and
// sluice-webhooks process of a fleet sees the same keys); or, for the memory-store stack,
// in a directory the gateway shares with the backends it starts.

export interface KeyringStorage {
  get(customer: string): Promise<string | undefined>;
  /** Stores `text` when the customer has nothing stored; false when it had. */
  create(customer: string, text: string): Promise<boolean>;
  /** Replaces `expected` with `text`; false when what is stored is no longer `expected`. */
  replace(customer: string, expected: string, text: string): Promise<boolean>;
  customers(): Promise<string[]>;
}

const REPLACE_LUA = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
`;

type KeyringClient = RedisClient & { sluiceKeyringReplace(key: string, expected: string, text: string): Promise<number> };

/** `<prefix>whkey:{<customer>}`: the customer as the hash tag, like its limit keys. */
export class RedisKeyringStorage implements KeyringStorage {
  private readonly client: KeyringClient;

  constructor(client: RedisClient, private readonly prefix: string) {
    this.client = client as KeyringClient;
    if (typeof this.client.sluiceKeyringReplace !== 'function') client.defineCommand('sluiceKeyringReplace', { numberOfKeys: 1, lua: REPLACE_LUA });
  }

  private key(customer: string): string {
    return `${this.prefix}whkey:{${customer}}`;
  }

  async get(customer: string): Promise<string | undefined> {
    return (await this.client.get(this.key(customer))) ?? undefined;
  }

  async create(customer: string, text: string): Promise<boolean> {
    return (await this.client.set(this.key(customer), text, 'NX')) === 'OK';
  }

  async replace(customer: string, expected: string, text: string): Promise<boolean> {
    return (await this.client.sluiceKeyringReplace(this.key(customer), expected, text)) === 1;
  }

  async customers(): Promise<string[]> {
    const start = `${this.prefix}whkey:{`;
    const keys = await scanAll(this.client, `${start}*`);
    return keys.map((k) => k.slice(start.length, -1));
  }
}

interface FileBody { readonly customer: string; readonly text: string }

/**
 * One file per customer (named by the SHA-256 of its id), written to a temporary name and
 * then linked (create: fails if the file exists) or renamed (replace) into place, so a
 * reader never sees half a file. Replace compares and swaps within one process only: the
 * memory-store stack has one gateway process, the only writer of rotations.
 */
export class DirKeyringStorage implements KeyringStorage {
  private ready: Promise<unknown> | undefined;
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(private readonly dir: string) {}

  private file(customer: string): string {
    return join(this.dir, `${createHash('sha256').update(customer).digest('hex')}.json`);
  }

  private async temp(customer: string, text: string): Promise<string> {
    this.ready ??= mkdir(this.dir, { recursive: true, mode: 0o700 });
    await this.ready;
    const tmp = join(this.dir, `.tmp-${randomBytes(8).toString('hex')}`);
    await writeFile(tmp, JSON.stringify({ customer, text } satisfies FileBody), { mode: 0o600 });
    return tmp;
  }

  async get(customer: string): Promise<string | undefined> {
    try {
      return (JSON.parse(await readFile(this.file(customer), 'utf8')) as FileBody).text;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async create(customer: string, text: string): Promise<boolean> {
    const tmp = await this.temp(customer, text);
    try {
      await link(tmp, this.file(customer));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    } finally {
      await unlink(tmp).catch(() => {});
    }
  }

  replace(customer: string, expected: string, text: string): Promise<boolean> {
    const run = (this.locks.get(customer) ?? Promise.resolve()).then(async () => {
      if ((await this.get(customer)) !== expected) return false;
      await rename(await this.temp(customer, text), this.file(customer));
      return true;
    });
    const settled = run.catch(() => {});
    this.locks.set(customer, settled);
    void settled.then(() => { if (this.locks.get(customer) === settled) this.locks.delete(customer); });
    return run;
  }

  async customers(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: string[] = [];
    for (const n of names.filter((f) => f.endsWith('.json'))) out.push((JSON.parse(await readFile(join(this.dir, n), 'utf8')) as FileBody).customer);
    return out;
  }
}
