// The JSON Schema of `sluice import-nginx --report FILE` (report.ts's ImportReport),
// published as gateway/import-nginx/report.schema.json (`sluice import-nginx
// --report-schema`); a drift test keeps the file and the code together. Fields are only
// ever added (schema_version says when a meaning changes).

import { Type, type TSchema } from '@sinclair/typebox';

const Obj = <P extends Record<string, TSchema>>(properties: P, description?: string) =>
  Type.Object(properties, { additionalProperties: false, ...(description === undefined ? {} : { description }) });

const Item = Obj({
  file: Type.String({ description: "Relative to the main file's directory (nginx's conf prefix) when inside it." }),
  line: Type.Integer({ minimum: 0 }),
  directive: Type.String({ description: 'The directive as written, arguments included (a Lua body as { … }).' }),
  reason: Type.String(),
}, 'One directive and what became of it.');

const Kind = Type.Union([Type.Literal('listed'), Type.Literal('emulated'), Type.Literal('not_enforced'), Type.Literal('note')], {
  description: 'listed: not translated, Sluice differs as the reason says; emulated: the cause of a 501 not_migrated route; not_enforced: a Lua handler Sluice does not run; note: translated, with a difference worth knowing.',
});

const Placed = Obj({ kind: Kind, ...Item.properties });

const Location = Obj({
  location: Type.String({ description: 'As written: location ~* \\.php$' }),
  at: Type.String({ description: 'file:line' }),
  route: Type.Optional(Type.String({ description: 'The Sluice route it became.' })),
  outcome: Type.Union([Type.Literal('translated'), Type.Literal('emulated'), Type.Literal('internal'), Type.Literal('unreachable'), Type.Literal('named'), Type.Literal('no_route')], {
    description: 'emulated: answers 501 not_migrated; internal: answers 404 as nginx does to clients; no_route: no route can match its paths (its requests go elsewhere, listed).' }),
  requests: Type.String({ description: 'Which requests this concerns, in words.' }),
  items: Type.Array(Placed),
});

const Server = Obj({
  name: Type.String({ description: 'The virtual host it became.' }),
  at: Type.String(),
  server_names: Type.Array(Type.String()),
  listen: Type.Array(Type.String()),
  items: Type.Array(Placed, { description: 'About the server block itself (listen, names, TLS, server-level rewrites).' }),
  locations: Type.Array(Location),
});

const Difference = Obj({
  request: Type.String({ description: '[WS ]METHOD host listener path' }),
  server: Type.Optional(Type.String()),
  location: Type.Optional(Type.String({ description: 'The nginx location that answered.' })),
  field: Type.String({ description: 'status, upstream, path, host, location, request header NAME or response header NAME.' }),
  nginx: Type.String(),
  sluice: Type.String(),
  listed_by: Type.Optional(Type.String({ description: 'The report item that already says this request differs; absent: an unlisted difference.' })),
});

const Verify = Obj({
  requests: Type.Integer({ minimum: 0 }),
  same: Type.Integer({ minimum: 0 }),
  listed_differences: Type.Integer({ minimum: 0 }),
  unlisted_differences: Type.Integer({ minimum: 0 }),
  differences: Type.Array(Difference, { description: 'Unlisted ones first.' }),
}, 'What --verify found, comparing nginx and Sluice on the same requests.');

const Count = Type.Integer({ minimum: 0 });

export const ImportReportSchema = Type.Object({
  $schema: Type.Optional(Type.String()),
  schema_version: Type.Literal(1),
  source: Type.String(),
  upstream_policy: Type.Union([Type.Literal('nginx'), Type.Literal('sluice')], { description: "nginx: imported upstreams keep nginx's failure defaults; sluice: Sluice's retries and outlier ejection." }),
  counts: Obj({
    translated: Count, emulated: Count, listed: Count, not_enforced: Count, notes: Count,
    verified: Type.Union([Count, Type.Null()], { description: 'Requests --verify found answered alike; null without --verify.' }),
  }),
  translated: Count,
  untranslated: Type.Array(Item),
  notes: Type.Array(Item),
  not_enforced: Type.Array(Item),
  servers: Type.Array(Server),
  global: Type.Array(Placed),
  errors: Type.Array(Type.String()),
  verify: Type.Union([Verify, Type.Null()]),
}, { additionalProperties: false, title: 'sluice import-nginx report', $id: 'https://sluice.dev/schemas/import-nginx-report.json' });

export function publishedReportSchema(): unknown {
  return { $schema: 'http://json-schema.org/draft-07/schema#', ...JSON.parse(JSON.stringify(ImportReportSchema)) as object };
}
