import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

// API keys minted by Sluice, in GitHub's token style: a prefix a secret scanner can match,
// the environment the key is for, 30 random base62 characters (178 bits), and a CRC32 of
// everything before it in 6 base62 characters:
//
//   sluice_live_8rQ2mZ0k4W1xYbT9cVn3dLp7sJ6gHf5a0JjU3k
//   └prefix┘└env┘└────────── random (30) ─────────┘└crc┘
//
// A key of this shape with a wrong checksum, or minted for another environment, is refused
// before any store lookup: a typo or a key pasted into the wrong deployment costs nothing.
// Keys of any other shape (the older `sk_` keys, the config's demo keys) are looked up as
// before.

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const RANDOM_CHARS = 30;
const CHECKSUM_CHARS = 6;
export const KEY_PREFIX = 'sluice';
export const ENVIRONMENT_PATTERN = '^[a-z0-9]{1,16}$';
const SHAPE = new RegExp(`^${KEY_PREFIX}_([a-z0-9]{1,16})_[0-9A-Za-z]{${RANDOM_CHARS + CHECKSUM_CHARS}}$`);

function base62(n: number, width: number): string {
  let out = '';
  for (let i = 0; i < width; i++) {
    out = ALPHABET[n % 62]! + out;
    n = Math.floor(n / 62);
  }
  return out;
}

function checksum(body: string): string {
  return base62(crc32(body), CHECKSUM_CHARS);
}

/** A new key for `environment`. */
export function mintKey(environment: string): string {
  let random = '';
  while (random.length < RANDOM_CHARS) {
    // Bytes of 248 and above would make some characters likelier (248 = 4 × 62).
    for (const b of randomBytes(RANDOM_CHARS * 2)) if (b < 248 && random.length < RANDOM_CHARS) random += ALPHABET[b % 62];
  }
  const body = `${KEY_PREFIX}_${environment}_${random}`;
  return body + checksum(body);
}

/** `other`: not a Sluice-format key (looked up as is). */
export type KeyFormat = 'ok' | 'other' | 'bad_checksum' | 'other_environment';

export function checkKeyFormat(key: string, environment: string): KeyFormat {
  const m = SHAPE.exec(key);
  if (m === null) return 'other';
  const cut = key.length - CHECKSUM_CHARS;
  if (checksum(key.slice(0, cut)) !== key.slice(cut)) return 'bad_checksum';
  return m[1] === environment ? 'ok' : 'other_environment';
}
