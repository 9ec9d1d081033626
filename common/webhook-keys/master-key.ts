import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';

// The master key that webhook signing keys are encrypted under at rest (AES-256-GCM,
// node:crypto). It comes from the environment and never touches the store:
//   SLUICE_MASTER_KEY            32 random bytes, base64 (`openssl rand -base64 32`) or hex
//   SLUICE_MASTER_KEY_PREVIOUS   older master keys, space-separated, during a rotation
// Everything is encrypted under the current key and decrypted under whichever key sealed
// it (its id is in the sealed text), so a rotation is: set the new key with the old one as
// previous everywhere, re-encrypt (POST /admin/webhook-keys/rewrap), drop the previous one.

export const MASTER_KEY_ENV = 'SLUICE_MASTER_KEY';
export const PREVIOUS_MASTER_KEYS_ENV = 'SLUICE_MASTER_KEY_PREVIOUS';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const VERSION = 'v1';

export interface MasterKey {
  /** Names the key in sealed texts; derived from it, reveals nothing about it. */
  readonly id: string;
  readonly key: Buffer;
}

export interface MasterKeys {
  readonly current: MasterKey;
  readonly previous: readonly MasterKey[];
}

/** One master key from its text; throws with a message that never contains the key. */
export function parseMasterKey(text: string): MasterKey {
  const t = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, 'hex') : /^[A-Za-z0-9+/]{43}=$/.test(t) ? Buffer.from(t, 'base64') : undefined;
  if (key === undefined || key.length !== KEY_BYTES) throw new Error(`must be ${KEY_BYTES} bytes as base64 (44 characters, e.g. \`openssl rand -base64 32\`) or hex (64 characters)`);
  return { id: createHmac('sha256', key).update('sluice master key id').digest('hex').slice(0, 8), key };
}

/** The master keys the environment holds, or undefined without SLUICE_MASTER_KEY; throws when malformed. */
export function masterKeysFromEnv(env: NodeJS.ProcessEnv): MasterKeys | undefined {
  const current = env[MASTER_KEY_ENV];
  if (current === undefined || current.trim() === '') return undefined;
  const parse = (name: string, text: string): MasterKey => {
    try {
      return parseMasterKey(text);
    } catch (err) {
      throw new Error(`${name}: ${(err as Error).message}`);
    }
  };
  const previous = (env[PREVIOUS_MASTER_KEYS_ENV] ?? '').split(/\s+/).filter((p) => p !== '').map((p, i) => parse(`${PREVIOUS_MASTER_KEYS_ENV} (key ${i + 1})`, p));
  return { current: parse(MASTER_KEY_ENV, current), previous };
}

/** A fresh master key's text (base64). */
export function newMasterKeyText(): string {
  return randomBytes(KEY_BYTES).toString('base64');
}

/** `v1.<master key id>.<iv>.<ciphertext>.<tag>` (base64url); `aad` binds it to its place (the customer). */
export function seal(mk: MasterKey, plain: Buffer, aad: string): string {
  const iv = randomBytes(IV_BYTES);
  const c = createCipheriv('aes-256-gcm', mk.key, iv);
  c.setAAD(Buffer.from(aad));
  const ct = Buffer.concat([c.update(plain), c.final()]);
  return [VERSION, mk.id, iv.toString('base64url'), ct.toString('base64url'), c.getAuthTag().toString('base64url')].join('.');
}

/** The id of the master key a sealed text is under. */
export function sealedWith(sealed: string): string | undefined {
  return sealed.split('.')[1];
}

export function unseal(keys: MasterKeys, sealed: string, aad: string): Buffer {
  const [version, id, iv, ct, tag] = sealed.split('.');
  if (version !== VERSION || iv === undefined || ct === undefined || tag === undefined) throw new Error('not a sealed webhook key');
  const mk = [keys.current, ...keys.previous].find((k) => k.id === id);
  if (mk === undefined) throw new Error(`sealed under master key ${id}, which this process does not have (set it in ${PREVIOUS_MASTER_KEYS_ENV})`);
  const d = createDecipheriv('aes-256-gcm', mk.key, Buffer.from(iv, 'base64url'));
  d.setAAD(Buffer.from(aad));
  d.setAuthTag(Buffer.from(tag, 'base64url'));
  return Buffer.concat([d.update(Buffer.from(ct, 'base64url')), d.final()]);
}
