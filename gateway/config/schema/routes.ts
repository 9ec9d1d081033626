import { Type } from '@sinclair/typebox';
import { Section, StringEnum } from '../../../common/schema-types.js';

// Routes, and the nginx limit_req / limit_conn zones they use (gateway/limit-req/CONFIG.md).

/** The most limit_req (and, separately, limit_conn) zones one route may use: the Redis store defines one script command per count up front. */
export const MAX_ZONES_PER_ROUTE = 8;

const Status = Type.Integer({ minimum: 400, maximum: 599, default: 503, description: "What a rejected request gets (nginx's default is 503)." });

const LimitReqRule = Section({
  zone: Type.String({ minLength: 1, description: 'A zone under limit_req_zones.' }),
  burst: Type.Integer({ minimum: 0, default: 0, description: 'Requests over the rate that wait (or pass, up to delay) instead of being refused.' }),
  delay: Type.Optional(Type.Integer({ minimum: 0, description: 'Requests up to this excess pass at once (not with nodelay).' })),
  nodelay: Type.Boolean({ default: false, description: 'The whole burst passes at once (delay = burst).' }),
}, { description: 'One limit_req zone=NAME [burst=N] [nodelay | delay=N].' });

const LimitConnRule = Section({
  zone: Type.String({ minLength: 1, description: 'A zone under limit_conn_zones.' }),
  max: Type.Integer({ minimum: 1, maximum: 65535, description: 'Requests in flight per key.' }),
}, { description: 'One limit_conn NAME MAX.' });

export const Route = Section({
  name: Type.Optional(Type.String({ minLength: 1, description: 'Default: the prefix.' })),
  prefix: Type.String({ pattern: '^/', patternErrorMessage: 'must start with /', description: 'The longest matching prefix wins, on a path-segment boundary.' }),
  upstream: Type.String({ minLength: 1, description: 'The upstream requests are proxied to.' }),
  public: Type.Boolean({ default: false, description: 'A public route skips auth and limits (result downloads are capabilities).' }),
  plans: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'Only keys of these plans may use the route.' })),
  max_body_bytes: Type.Optional(Type.Integer({ minimum: 0, description: "Body limit for the route (default: the plan's)." })),
  limit_req: Type.Array(LimitReqRule, { default: [], maxItems: MAX_ZONES_PER_ROUTE, description: 'nginx limit_req on this route, checked in order.' }),
  limit_req_status: Status,
  limit_conn: Type.Array(LimitConnRule, { default: [], maxItems: MAX_ZONES_PER_ROUTE, description: 'nginx limit_conn on this route.' }),
  limit_conn_status: Status,
}, { description: 'A route: which requests it takes and where they go.' });

const ZoneKey = Type.String({
  pattern: "^(client|customer|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+)$", patternErrorMessage: 'must be client, customer or header:<Name>',
  description: 'What the zone counts by: the client address, the authenticated customer, or one request header.',
});
const Size = Type.Optional(Type.String({ pattern: '^[0-9]+[kKmMgG]?$', patternErrorMessage: 'must be an nginx size like 10m',
  description: "The nginx zone size, kept for the importer's fidelity; not enforced." }));

export const LimitReqZone = Section({
  kind: StringEnum(['nginx_limit_req'] as const, { default: 'nginx_limit_req', description: "The algorithm: nginx's leaky bucket, decided as nginx does." }),
  key: ZoneKey,
  rate: Type.String({ pattern: '^[0-9]+r/(s|m)$', patternErrorMessage: 'must look like 10r/s or 30r/m', description: 'Requests per second (r/s) or per minute (r/m).' }),
  size: Size,
});

export const LimitConnZone = Section({ key: ZoneKey, size: Size });
