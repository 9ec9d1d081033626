import { Type, type Static } from '@sinclair/typebox';
import { Section, StringEnum } from '../../../common/schema-types.js';
import { MAX_ZONES_PER_ROUTE } from '../../store/types.js';

// Routes, virtual hosts, and the nginx limit_req / limit_conn zones routes use
// (docs/routes.md is the reference; gateway/limit-req/CONFIG.md for the zones).
//
// A route's fields that nested routes inherit have no schema default: the loader fills
// them in after inheritance (gateway/route/resolve.ts), so "not given" stays visible.

const Status = Type.Integer({ minimum: 400, maximum: 599, description: "What a rejected request gets; default 503 (nginx's), or the parent route's." });

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

const PATH = { pattern: '^/', patternErrorMessage: 'must start with /' } as const;
const HEADER_NAME = { pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", patternErrorMessage: 'must be an HTTP header name' } as const;

const HeaderMatch = Section({
  name: Type.String({ ...HEADER_NAME, description: 'The request header.' }),
  exact: Type.Optional(Type.String({ description: 'The value, compared exactly (repeated headers: any one of them).' })),
  regex: Type.Optional(Type.String({ description: 'A regex the value must match (linear-time engine, as path regexes).' })),
  present: Type.Optional(Type.Boolean({ description: 'true: the header must be sent, with any value.' })),
  absent: Type.Optional(Type.Boolean({ description: 'true: the header must not be sent.' })),
}, { description: 'A request header condition: name plus exactly one of exact, regex, present: true, absent: true.' });

const AccessRule = Section({
  allow: Type.Optional(Type.String({ description: 'An address, a CIDR (10.0.0.0/8, 2001:db8::/32) or all.' })),
  deny: Type.Optional(Type.String({ description: 'An address, a CIDR or all.' })),
}, { description: 'nginx allow / deny: exactly one of allow or deny.' });

const ErrorAnswer = Section({
  code: Type.String({ pattern: '^[a-z][a-z0-9_]*$', patternErrorMessage: 'must be a snake_case error code', description: 'The error code clients see (error.code).' }),
  message: Type.String({ description: 'May use the template variables.' }),
}, { description: 'Answer with the standard JSON error envelope (with the request id).' });

const Return = Section({
  status: Type.Integer({ minimum: 200, maximum: 599, description: 'The status of the answer.' }),
  location: Type.Optional(Type.String({ minLength: 1, description: 'Location of a redirect (status 301, 302, 303, 307 or 308); may use the template variables.' })),
  body: Type.Optional(Type.String({ description: 'The body; may use the template variables.' })),
  content_type: Type.Optional(Type.String({ minLength: 1, description: 'Default: text/plain; charset=utf-8 for a body.' })),
  headers: Type.Optional(Type.Record(Type.String(HEADER_NAME), Type.String(), { description: 'Response headers; values may use the template variables.' })),
  error: Type.Optional(ErrorAnswer),
}, { description: 'nginx return: answer locally. Without body, location or error, a status >= 400 gets the JSON error envelope with the code for its status.' });

const Rewrite = Section({
  replace_prefix: Type.Optional(Type.String({ ...PATH, description: "nginx proxy_pass URI rule: the route's matched prefix (or exact path) is replaced by this." })),
  strip_prefix: Type.Optional(Type.Boolean({ description: "true: the route's prefix is removed (what is left always starts with /)." })),
  regex: Type.Optional(Type.String({ minLength: 1, description: 'nginx rewrite ... break: applied to the normalised path.' })),
  replacement: Type.Optional(Type.String({ description: 'With regex: the new path; $1..$9 are its captures, and the template variables may be used.' })),
}, { description: 'The path sent upstream (the query string is kept); exactly one of replace_prefix, strip_prefix: true, or regex with replacement. Absent: the client\'s original path.' });

const HeaderEdits = Section({
  set: Type.Optional(Type.Record(Type.String(HEADER_NAME), Type.String(), { description: 'Replace (or add) these headers; values may use the template variables; a value that comes out empty sends no header.' })),
  add: Type.Optional(Type.Record(Type.String(HEADER_NAME), Type.String(), { description: 'Add these headers beside any already there.' })),
  remove: Type.Optional(Type.Array(Type.String(HEADER_NAME), { description: 'Remove these headers.' })),
});

const Timeouts = Section({
  connect_ms: Type.Optional(Type.Integer({ minimum: 1, description: 'Longest wait for a connection to the target (connecting or queued for the pool); then as a connect timeout.' })),
  headers_ms: Type.Optional(Type.Integer({ minimum: 1, description: 'Longest wait for the response head (504 after).' })),
  body_ms: Type.Optional(Type.Integer({ minimum: 1, description: 'Longest pause while the response body streams (504 before it starts, a cut after).' })),
}, { description: "Override the upstream's connect_timeout_ms, headers_timeout_ms and body_timeout_ms for this route." });

/** Where the one route definition lives in the config schema (it is recursive: nested routes). */
export const ROUTE_REF = '#/definitions/route';

/** A route's own fields, everything but its nested routes. */
export const RouteFields = Section({
  name: Type.Optional(Type.String({ minLength: 1, description: 'Default: the path it matches (exact, prefix or regex).' })),
  exact: Type.Optional(Type.String({ ...PATH, description: 'nginx location = PATH: this path only.' })),
  prefix: Type.Optional(Type.String({ ...PATH, description: 'nginx location PATH: every path starting with it; the longest wins.' })),
  prefix_priority: Type.Optional(Type.Boolean({ description: 'nginx location ^~ PATH: when this is the longest matching prefix, no regex route is tried.' })),
  regex: Type.Optional(Type.String({ minLength: 1, description: 'nginx location ~ RE: tried in file order after the prefixes (linear-time engine: no backreferences or lookahead).' })),
  case_insensitive: Type.Optional(Type.Boolean({ description: 'nginx location ~* RE (regex routes only).' })),
  methods: Type.Optional(Type.Array(Type.String({ pattern: '^[A-Z]+$', patternErrorMessage: 'must be an upper-case method name' }), { minItems: 1, description: 'Only these methods (HEAD is not implied by GET).' })),
  headers: Type.Optional(Type.Array(HeaderMatch, { description: 'Every condition must hold.' })),
  upstream: Type.Optional(Type.String({ minLength: 1, description: 'Proxy to this upstream. Exactly one of upstream or return (or neither in a nested route: it inherits).' })),
  return: Type.Optional(Return),
  access: Type.Optional(Type.Array(AccessRule, { description: 'nginx allow/deny by client address, first match wins, checked before everything else; no rule matching means allowed.' })),
  rewrite: Type.Optional(Rewrite),
  host: Type.Optional(Type.String({ minLength: 1, description: "The Host sent upstream: client (the client's Host, the default), upstream (the target's host:port), or a fixed name." })),
  request_headers: Type.Optional({ ...HeaderEdits, description: 'Headers set, added or removed on the way to the upstream (nginx proxy_set_header).' }),
  response_headers: Type.Optional({ ...HeaderEdits, description: 'Headers set, added or removed on the way back to the client (nginx add_header, proxy_hide_header).' }),
  timeouts: Type.Optional(Timeouts),
  public: Type.Optional(Type.Boolean({ description: 'A public route skips auth and limits (result downloads are capabilities); default false.' })),
  plans: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'Only keys of these plans may use the route.' })),
  max_body_bytes: Type.Optional(Type.Integer({ minimum: 0, description: "Body limit for the route (default: the plan's)." })),
  limit_req: Type.Optional(Type.Array(LimitReqRule, { maxItems: MAX_ZONES_PER_ROUTE, description: 'nginx limit_req on this route, checked in order; default none.' })),
  limit_req_status: Type.Optional(Status),
  limit_conn: Type.Optional(Type.Array(LimitConnRule, { maxItems: MAX_ZONES_PER_ROUTE, description: 'Default none.' })),
  limit_conn_status: Type.Optional(Status),
  upgrade: Type.Optional(Type.Array(Type.String({ pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", patternErrorMessage: 'must be a protocol token like websocket' }), {
    minItems: 1, description: 'Upgrade protocols (websocket) tunnelled to the upstream; an Upgrade for any other is proxied as a plain request (docs/listeners.md).' })),
});

/** A route as written, with its nested routes. */
export type RouteDoc = Static<typeof RouteFields> & { routes?: RouteDoc[] };

/** A reference to the route definition: use it wherever a list of routes goes. */
export const RouteRef = Type.Unsafe<RouteDoc>({ $ref: ROUTE_REF });

/** The route definition itself (`definitions.route` of the config schema). */
export const Route = Section({
  ...RouteFields.properties,
  routes: Type.Optional(Type.Array(RouteRef, { description: 'Nested routes: each matches inside this one (nginx nested locations) and inherits what it does not set.' })),
}, { description: 'A route: what it matches (exactly one of exact, prefix, regex; plus methods and headers), then upstream or return.' });

const SERVER_NAME = 'An exact name, *.example.com (any name under it), mail.* (any ending), .example.com (both), ~regex (case-insensitive), or "" (no Host).';

export const VirtualHost = Section({
  name: Type.String({ minLength: 1, description: 'Its name, in messages and logs.' }),
  server_names: Type.Array(Type.String({ description: SERVER_NAME }), { default: [], description: 'nginx server_name: which Host headers this virtual host answers.' }),
  listeners: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'Listener names it is on; default every listener.' })),
  default_for: Type.Array(Type.String({ minLength: 1 }), { default: [], description: "nginx default_server: the listeners on which it answers Hosts no virtual host names (else the top-level routes, else the listener's first virtual host)." }),
  routes: Type.Array(RouteRef, { minItems: 1, description: 'Its routes, written as routes[] (docs/routes.md).' }),
}, { description: 'nginx server block: routes for the Hosts it names.' });

const CIDR_LIST = Type.Array(Type.String({ minLength: 1 }), { description: 'Peer addresses or CIDRs (v4 or v6) whose header is believed.' });

export const RealIp = Section({
  trusted: CIDR_LIST,
  header: Type.String({ ...HEADER_NAME, default: 'x-forwarded-for', description: 'The header carrying the client: X-Forwarded-For, X-Real-IP, or any other.' }),
  recursive: Type.Boolean({ default: false, description: 'nginx real_ip_recursive: skip every trusted address from the right of the header, not just the last hop.' }),
}, { description: 'nginx set_real_ip_from / real_ip_header / real_ip_recursive: the client address behind trusted proxies.' });

export type HostPolicy = 'client' | 'upstream';
export const HOST_POLICIES: readonly HostPolicy[] = ['client', 'upstream'];

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
