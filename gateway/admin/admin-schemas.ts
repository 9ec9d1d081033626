import { Type } from '@sinclair/typebox';
import { Section, StringEnum } from '../../common/schema-types.js';
import { LimitOverrides, WebhookUrl } from '../config/schema/limits.js';

// The admin API's bodies, once: admin-server.ts validates requests with them and
// openapi.ts describes the API with them. The overrides are the config file's own
// schema (gateway/config/schema/limits.ts), so the two accept the same limits.

export const CustomerId = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$', patternErrorMessage: 'must be 1-128 of A-Z a-z 0-9 . _ : @ -' });
export const Digest = Type.String({ pattern: '^[0-9a-f]{64}$', patternErrorMessage: 'must be 64 lower-case hex characters' });
const Text = (description?: string) => Type.String({ maxLength: 256, ...(description === undefined ? {} : { description }) });

export const KeyCreate = Section({
  customer: CustomerId,
  plan: Type.Optional(Text('A plan in the config. Required unless the customer already has one.')),
  label: Type.Optional(Text()),
});

export const CustomerPut = Section({
  plan: Type.Optional(Text()),
  overrides: LimitOverrides,
  webhook_url: Type.Optional(WebhookUrl),
});

export const KeyCreated = Type.Object({
  key: Type.String({ description: 'The plain key, shown once.' }),
  digest: Digest,
  customer: Type.String(),
  plan: Type.Optional(Type.String()),
  label: Type.Optional(Type.String()),
});

const Key = Type.Object({
  digest: Digest,
  customer: Type.String(),
  plan: Type.Optional(Type.String()),
  label: Type.Optional(Type.String()),
  created_at: Type.Integer({ description: 'Unix milliseconds.' }),
});
export const KeyList = Type.Object({ keys: Type.Array(Key) });

export const Customer = Type.Object({
  id: Type.String(),
  plan: Type.Optional(Type.String()),
  overrides: LimitOverrides,
  webhook_url: Type.Optional(WebhookUrl),
});

export const Usage = Type.Object({
  customer: Type.String(),
  day_used: Type.Integer(),
  month_used: Type.Integer(),
  inflight: Type.Integer(),
  tokens: Type.Union([Type.Number(), Type.Null()], { description: 'Tokens left in the bucket.' }),
});

export const Status = Type.Object({ status: Type.Literal('ok'), pid: Type.Optional(Type.Integer()) });
export const Readiness = Type.Object({
  status: StringEnum(['ready', 'not_ready'] as const),
  store: StringEnum(['memory', 'redis'] as const),
  error: Type.Optional(Type.String()),
});
