import { Type, type Static } from '@sinclair/typebox';
import { DAY_MS, dayOf, isoDate } from '../store/calendar.js';
import type { UsageRow } from '../store/types.js';
import { OPERATION_CLASSES } from './operation.js';

// Daily usage as a billing system reads it, one schema for the customer's
// GET /v1/account/usage, the admin API's GET /admin/usage and `sluice admin usage`.

const Count = (description: string) => Type.Integer({ minimum: 0, description });

export const UsageDay = Type.Object({
  date: Type.String({ description: 'The UTC day, yyyy-mm-dd.' }),
  customer: Type.String(),
  requests: Count('Requests that passed the limits.'),
  refused: Count('Requests refused by the limits (429).'),
  replayed: Count('Repeats of an Idempotency-Key answered from the kept response (not charged).'),
  units_charged: Count('Units charged: at admission, plus what settlement added.'),
  units_refunded: Count('Units given back: the work cost less than charged, or the response failed (5xx).'),
  units_net: Type.Integer({ description: 'units_charged - units_refunded: what to bill.' }),
  bytes_in: Count('Request body bytes.'),
  bytes_out: Count('Response body bytes.'),
  megapixels: Count('Started megapixels decoded, as the backends reported them.'),
  classes: Type.Record(Type.String(), Type.Integer({ minimum: 0 }), { description: `Requests by operation class: ${OPERATION_CLASSES.join(', ')}.` }),
  features: Type.Object({
    auto: Count('Requests that ran format: auto.'),
    face: Count('Requests that ran face detection (POST /v1/detect or a face crop).'),
  }),
}, { additionalProperties: false });
export type UsageDay = Static<typeof UsageDay>;

export const UsageReport = Type.Object({
  from: Type.String(),
  to: Type.String(),
  unit: Type.String({ description: 'What units count: `units` (costs configured) or `requests`; always `units` for the admin listing.' }),
  days: Type.Array(UsageDay, { description: 'Days with any usage, oldest first.' }),
}, { additionalProperties: false });
export type UsageReport = Static<typeof UsageReport>;

export function usageDay(r: UsageRow): UsageDay {
  const c = r.counts;
  const n = (name: string): number => c[name] ?? 0;
  return {
    date: isoDate(r.day),
    customer: r.customer,
    requests: n('requests'),
    refused: n('refused'),
    replayed: n('replayed'),
    units_charged: n('units'),
    units_refunded: n('refunded'),
    units_net: n('units') - n('refunded'),
    bytes_in: n('bytes_in'),
    bytes_out: n('bytes_out'),
    megapixels: n('megapixels'),
    classes: Object.fromEntries(OPERATION_CLASSES.map((k) => [k, n(`class:${k}`)])),
    features: { auto: n('feature:auto'), face: n('feature:face') },
  };
}

/** The default span when `from` is not given: the last 30 days. */
const DEFAULT_DAYS = 30;

/** A from/to query, each yyyy-mm-dd (UTC): the day numbers, or what is wrong with it (for a 400). */
export function usageRange(from: string | null, to: string | null, maxDays: number, nowMs = Date.now()): { fromDay: number; toDay: number } | string {
  const toDay = to === null ? Math.floor(nowMs / DAY_MS) : dayOf(to);
  if (toDay === undefined) return `to: must be a date yyyy-mm-dd, got ${JSON.stringify(to)}`;
  const fromDay = from === null ? toDay - Math.min(DEFAULT_DAYS, maxDays) + 1 : dayOf(from);
  if (fromDay === undefined) return `from: must be a date yyyy-mm-dd, got ${JSON.stringify(from)}`;
  if (fromDay > toDay) return `from: must not be after to (${isoDate(toDay)})`;
  if (toDay - fromDay + 1 > maxDays) return `from: at most ${maxDays} days (billing.usage.retention_days) from from to to`;
  return { fromDay, toDay };
}
