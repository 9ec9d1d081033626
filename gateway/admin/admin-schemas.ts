import { Type } from '@sinclair/typebox';
import { Section, StringEnum } from '../../common/schema-types.js';
import { CidrList } from '../config/schema/auth.js';
import { LimitOverrides } from '../config/schema/limits.js';

// The admin API's bodies, once: the routes (routes/*.ts) validate requests with them and
// openapi.ts describes the API with them. The overrides are the config file's own
// schema (gateway/config/schema/limits.ts), so the two accept the same limits.

export const CustomerId = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$', patternErrorMessage: 'must be 1-128 of A-Z a-z 0-9 . _ : @ -' });
export const Digest = Type.String({ pattern: '^[0-9a-f]{64}$', patternErrorMessage: 'must be 64 lower-case hex characters' });
const Text = (description?: string) => Type.String({ maxLength: 256, ...(description === undefined ? {} : { description }) });
const UnixMs = (description: string) => Type.Integer({ minimum: 0, description });
const Nullable = <T extends ReturnType<typeof Type.Integer> | typeof CidrList>(t: T, description: string) => Type.Union([t, Type.Null()], { description });

export const KeyCreate = Section({
  customer: CustomerId,
  plan: Type.Optional(Text('A plan in the config. Required unless the customer already has one.')),
  label: Type.Optional(Text()),
  expires_at: Type.Optional(UnixMs('Unix ms from which the key is refused (401). Absent: never.')),
  allow: Type.Optional(CidrList),
});

export const KeyPatch = Section({
  label: Type.Optional(Text()),
  expires_at: Type.Optional(Nullable(UnixMs(''), 'Unix ms from which the key is refused; null: never.')),
  allow: Type.Optional(Nullable(CidrList, 'CIDRs the key may be used from; null: anywhere.')),
});

export const KeyRotate = Section({
  grace_seconds: Type.Optional(Type.Integer({ minimum: 0, description: 'How long the old key keeps working; at most (and by default) auth.rotation_grace_s.' })),
});

export const CustomerPut = Section({
  plan: Type.Optional(Text()),
  overrides: LimitOverrides,
});

const KeyFields = {
  digest: Digest,
  customer: Type.String(),
  plan: Type.Optional(Type.String()),
  label: Type.Optional(Type.String()),
  created_at: Type.Integer({ description: 'Unix milliseconds.' }),
  expires_at: Type.Union([Type.Integer(), Type.Null()], { description: 'Unix ms from which the key is refused; null: never.' }),
  allow: Type.Union([Type.Array(Type.String()), Type.Null()], { description: 'CIDRs the key may be used from; null: anywhere.' }),
};

export const KeyCreated = Type.Object({
  key: Type.String({ description: 'The plain key (`sluice_<environment>_...`), shown once.' }),
  ...KeyFields,
});

export const KeyRotated = Type.Object({
  ...KeyCreated.properties,
  replaces: Type.Object({ digest: Digest, grace_until: Type.Integer({ description: 'Unix ms until which the old key keeps working.' }) }),
});

export const Key = Type.Object({
  ...KeyFields,
  status: StringEnum(['active', 'rotated', 'expired'] as const, { description: 'rotated: replaced, still working until grace_until; expired: refused.' }),
  rotated_at: Type.Union([Type.Integer(), Type.Null()]),
  grace_until: Type.Union([Type.Integer(), Type.Null()]),
  replaced_by: Type.Union([Digest, Type.Null()]),
  last_used_at: Type.Union([Type.Integer(), Type.Null()], { description: 'Unix ms of the last request, as of the gateways\' last batched report (auth.last_used_flush_ms).' }),
});
export const KeyList = Type.Object({ keys: Type.Array(Key) });

export const Customer = Type.Object({
  id: Type.String(),
  plan: Type.Optional(Type.String()),
  overrides: LimitOverrides,
});

export const Usage = Type.Object({
  customer: Type.String(),
  day_used: Type.Integer(),
  month_used: Type.Integer(),
  inflight: Type.Integer(),
  tokens: Type.Union([Type.Number(), Type.Null()], { description: 'Tokens left in the bucket.' }),
});

export const Rewrapped = Type.Object({
  rewrapped: Type.Integer({ description: 'Customers whose webhook keys were re-encrypted under the current master key.' }),
  current: Type.Integer({ description: 'Customers already under it.' }),
  master_key: Type.String({ description: 'The id of the current master key (not the key).' }),
});

export const Status = Type.Object({ status: Type.Literal('ok'), pid: Type.Optional(Type.Integer()) });
export const Readiness = Type.Object({
  status: StringEnum(['ready', 'not_ready'] as const),
  store: StringEnum(['memory', 'redis'] as const),
  error: Type.Optional(Type.String()),
});
