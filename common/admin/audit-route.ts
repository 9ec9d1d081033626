import { Type } from '@sinclair/typebox';
import { HttpError } from '../errors.js';
import { StringEnum } from '../schema-types.js';
import type { AuditLog } from './audit-log.js';
import type { AdminRoute } from './router.js';

// GET /admin/audit, the same on both admin listeners (they share the log when they share a Redis).

export const AuditEntrySchema = Type.Object({
  id: Type.String({ description: 'Ordered: `<ms>-<seq>`; pass as `before` to page back.' }),
  at: Type.String({ description: 'ISO 8601.' }),
  actor: Type.String({ description: 'The label of the admin token.' }),
  source: StringEnum(['gateway', 'webhooks'] as const),
  action: Type.String({ description: '`thing.verb`, e.g. key.create, key.rotate, customer.put, dead_letter.replay.' }),
  target: Type.String({ description: 'A customer id, a key id (the first 12 hex of its digest), a webhook id or an endpoint origin.' }),
  peer: Type.String(),
  request_id: Type.String(),
  details: Type.Record(Type.String(), Type.Unknown()),
}, { additionalProperties: false });
export const AuditList = Type.Object({ entries: Type.Array(AuditEntrySchema) });

const MAX_LIMIT = 1000;
const LABEL = Type.String({ maxLength: 64 });

export function auditRoute<D extends { readonly audit: AuditLog }>(): AdminRoute<D> {
  return {
    method: 'GET',
    path: '/admin/audit',
    doc: {
      operationId: 'listAudit',
      summary: 'Admin changes, newest first: who (token label), what, when. No token or key material is ever recorded.',
      parameters: [
        { name: 'limit', in: 'query', schema: Type.Integer({ minimum: 1, maximum: MAX_LIMIT, default: 100 }) },
        { name: 'before', in: 'query', schema: Type.String({ pattern: '^\\d+-\\d+$' }), description: 'Only entries older than this id.' },
        { name: 'actor', in: 'query', schema: LABEL, description: 'Only this token label.' },
        { name: 'action', in: 'query', schema: LABEL, description: 'Only this action.' },
      ],
      responses: { 200: { description: 'The entries.', schema: 'AuditList' }, 400: { description: 'A bad query parameter (`bad_request`).', schema: 'Error' } },
    },
    async handle(call, d) {
      const q = call.query;
      const limit = q.get('limit') ?? '100';
      if (!/^\d{1,4}$/.test(limit) || Number(limit) < 1 || Number(limit) > MAX_LIMIT) throw new HttpError(400, 'bad_request', `limit must be 1..${MAX_LIMIT}`, 'limit');
      const before = q.get('before') ?? undefined;
      if (before !== undefined && !/^\d+-\d+$/.test(before)) throw new HttpError(400, 'bad_request', 'before must be an entry id like 1700000000000-0', 'before');
      const entries = await d.audit.list({ limit: Number(limit), before, actor: q.get('actor') ?? undefined, action: q.get('action') ?? undefined });
      return { status: 200, body: { entries } };
    },
  };
}
