import { HttpError } from '../../../common/errors.js';
import type { AdminRoute } from '../../../common/admin/router.js';
import { Type } from '@sinclair/typebox';
import { usageDay, usageRange } from '../../credits/usage-report.js';
import { isoDate } from '../../store/calendar.js';
import { CustomerId } from '../admin-schemas.js';
import type { AdminDeps } from '../admin-deps.js';

const ID = new RegExp(CustomerId.pattern!);
const Day = (description: string) => Type.String({ format: 'date', description });

/** `GET /admin/usage?from=&to=[&customer=]`: daily usage for billing, of one customer or of every customer with any. */
export const usageHistory: AdminRoute<AdminDeps> = {
  method: 'GET',
  path: '/admin/usage',
  doc: {
    operationId: 'usageHistory',
    summary: 'Daily usage for billing (UTC days): requests, units charged and refunded, bytes, counts per operation class. Counters reach the store every billing.usage.flush_ms.',
    parameters: [
      { name: 'from', in: 'query', required: false, schema: Day('First day, yyyy-mm-dd (default: 29 days before `to`).') },
      { name: 'to', in: 'query', required: false, schema: Day('Last day, yyyy-mm-dd (default: today, UTC).') },
      { name: 'customer', in: 'query', required: false, description: 'Only this customer; without it, every customer with usage.', schema: CustomerId },
    ],
    responses: {
      200: { description: 'Days with usage, oldest first.', schema: 'UsageReport' },
      400: { description: 'Bad date, from after to, or more days than billing.usage.retention_days (`bad_request`).', schema: 'Error' },
    },
  },
  async handle(call, d) {
    const q = call.query;
    const customer = q.get('customer') ?? undefined;
    if (customer !== undefined && !ID.test(customer)) throw new HttpError(400, 'bad_request', 'customer: must be 1-128 of A-Z a-z 0-9 . _ : @ -');
    const range = usageRange(q.get('from'), q.get('to'), d.cfg.billing.usage.retention_days);
    if (typeof range === 'string') throw new HttpError(400, 'bad_request', range);
    const rows = await d.store.readUsage(customer, range.fromDay, range.toDay);
    return { status: 200, body: { from: isoDate(range.fromDay), to: isoDate(range.toDay), unit: 'units', days: rows.map(usageDay) } };
  },
};
