import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { seal, sealedWith, unseal, type MasterKeys } from './master-key.js';
import type { KeyringStorage } from './storage.js';

// Each customer's own webhook signing keys (per customer, not per endpoint: a customer
// names its webhook URL per request, and one key verifies every delivery it gets).
// Generated here, `whsec_` + 32 random bytes as Standard Webhooks asks, stored only sealed
// under the master key (master-key.ts). After a rotation the replaced key keeps signing
// beside the new one until its overlap ends, so every delivery carries both signatures
// and a receiver holding either key accepts it. At most two keys sign: a second rotation
// within an overlap retires the oldest at once. Beside each secret key is an ed25519 key
// pair (Standard Webhooks' asymmetric `v1a`): its public key (`whpk_`) lets a receiver
// verify without holding a secret; the private key is sealed like the secret.

const KEY_BYTES = 32;
const MAX_ATTEMPTS = 5;

interface SealedKey {
  readonly enc: string;
  /** The ed25519 private key (PKCS#8 DER), sealed; absent on keys made before v1a signatures. */
  readonly pair?: string;
  readonly created: number;
  /** Unix ms from which it no longer signs; null for the current key. */
  readonly expires: number | null;
}

interface StoredRecord {
  readonly v: 1;
  /** Newest first. */
  readonly keys: readonly SealedKey[];
}

/** What the customer sees: its current key and where a rotation stands. */
export interface KeyState {
  readonly key: string;
  /** `whpk_` + the raw ed25519 public key, base64: verifies the `v1a` signatures. */
  readonly publicKey: string | undefined;
  readonly createdAt: number;
  /** The key it replaced, while that still signs. */
  readonly previous: { readonly createdAt: number; readonly expiresAt: number } | undefined;
}

export class WebhookKeyError extends Error {}

const aad = (customer: string): string => `sluice-webhook-key\0${customer}`;
const pairAad = (customer: string): string => `sluice-webhook-key-pair\0${customer}`;
// The 32-byte key at the end of an ed25519 SPKI.
const formatPublicKey = (k: KeyObject): string => `whpk_${createPublicKey(k).export({ format: 'der', type: 'spki' }).subarray(-32).toString('base64')}`;
export const formatKey = (key: Buffer): string => `whsec_${key.toString('base64')}`;

export class WebhookKeyring {
  constructor(private readonly storage: KeyringStorage, private readonly master: MasterKeys, private readonly now: () => number = Date.now) {}

  /** The id of the master key new keys are sealed under. */
  get masterKeyId(): string {
    return this.master.current.id;
  }

  private fresh(customer: string, now: number): SealedKey {
    const { privateKey } = generateKeyPairSync('ed25519');
    return {
      enc: seal(this.master.current, randomBytes(KEY_BYTES), aad(customer)),
      pair: seal(this.master.current, privateKey.export({ format: 'der', type: 'pkcs8' }), pairAad(customer)),
      created: now, expires: null,
    };
  }

  private privateKey(customer: string, k: SealedKey): KeyObject | undefined {
    return k.pair === undefined ? undefined : createPrivateKey({ key: unseal(this.master, k.pair, pairAad(customer)), format: 'der', type: 'pkcs8' });
  }

  /** The customer's record, created (by whichever process asks first) when it has none. */
  private async load(customer: string): Promise<{ text: string; record: StoredRecord }> {
    for (let i = 0; i < MAX_ATTEMPTS; i++) {
      const text = await this.storage.get(customer);
      if (text !== undefined) return { text, record: JSON.parse(text) as StoredRecord };
      const created = JSON.stringify({ v: 1, keys: [this.fresh(customer, this.now())] } satisfies StoredRecord);
      if (await this.storage.create(customer, created)) return { text: created, record: JSON.parse(created) as StoredRecord };
    }
    throw new WebhookKeyError(`webhook key of ${customer}: the store kept changing under us`);
  }

  private live(record: StoredRecord, now: number): SealedKey[] {
    return record.keys.filter((k) => k.expires === null || k.expires > now);
  }

  private stateOf(customer: string, record: StoredRecord, now: number): KeyState {
    const [current, previous] = this.live(record, now);
    const pair = this.privateKey(customer, current!);
    return {
      key: formatKey(unseal(this.master, current!.enc, aad(customer))),
      publicKey: pair === undefined ? undefined : formatPublicKey(pair),
      createdAt: current!.created,
      previous: previous === undefined ? undefined : { createdAt: previous.created, expiresAt: previous.expires! },
    };
  }

  async state(customer: string): Promise<KeyState> {
    const { record } = await this.load(customer);
    return this.stateOf(customer, record, this.now());
  }

  /** A new current key; the old one keeps signing for overlapMs (0: stops at once). */
  async rotate(customer: string, overlapMs: number): Promise<KeyState> {
    for (let i = 0; i < MAX_ATTEMPTS; i++) {
      const { text, record } = await this.load(customer);
      const now = this.now();
      const [current] = this.live(record, now);
      const keys: SealedKey[] = [this.fresh(customer, now)];
      if (overlapMs > 0 && current !== undefined) keys.push({ ...current, expires: now + overlapMs });
      const next: StoredRecord = { v: 1, keys };
      if (await this.storage.replace(customer, text, JSON.stringify(next))) return this.stateOf(customer, next, now);
    }
    throw new WebhookKeyError(`webhook key of ${customer}: rotated concurrently too often, try again`);
  }

  /** The keys that sign a delivery to this customer now, newest first (created if it has none). */
  async signingKeys(customer: string): Promise<{ hmac: Buffer[]; ed25519: KeyObject[] }> {
    const { record } = await this.load(customer);
    const live = this.live(record, this.now());
    return {
      hmac: live.map((k) => unseal(this.master, k.enc, aad(customer))),
      ed25519: live.flatMap((k) => this.privateKey(customer, k) ?? []),
    };
  }

  /** Re-encrypts every customer's keys under the current master key (after a master key rotation). */
  async rewrap(): Promise<{ rewrapped: number; current: number }> {
    let rewrapped = 0;
    let current = 0;
    for (const customer of await this.storage.customers()) {
      for (let i = 0; ; i++) {
        const text = await this.storage.get(customer);
        if (text === undefined) break;
        const record = JSON.parse(text) as StoredRecord;
        if (record.keys.every((k) => sealedWith(k.enc) === this.master.current.id && (k.pair === undefined || sealedWith(k.pair) === this.master.current.id))) { current++; break; }
        const reseal = (sealed: string, where: string): string => seal(this.master.current, unseal(this.master, sealed, where), where);
        const keys = record.keys.map((k) => ({ ...k, enc: reseal(k.enc, aad(customer)), ...(k.pair === undefined ? {} : { pair: reseal(k.pair, pairAad(customer)) }) }));
        if (await this.storage.replace(customer, text, JSON.stringify({ v: 1, keys } satisfies StoredRecord))) { rewrapped++; break; }
        if (i >= MAX_ATTEMPTS) throw new WebhookKeyError(`webhook key of ${customer}: changed concurrently too often, run the rewrap again`);
      }
    }
    return { rewrapped, current };
  }
}
