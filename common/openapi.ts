import type { TSchema } from '@sinclair/typebox';
import type { AdminRoute, ResponseDoc } from './admin/router.js';
import { ANNOTATIONS, documentSchema } from './schema-check.js';

// The one OpenAPI 3.1 builder: the backend's document, the public contract the gateway
// serves, and both admin APIs' documents are assembled here. Validator schemas become
// components: the same JSON Schema as a document is checked against (properties with a
// default optional), without the validator-only annotations, and every subschema marked
// `x-component: Name` written as a `$ref` to that component (with the use's own
// description, when it has another).

function publish(node: unknown, components: Readonly<Record<string, TSchema>>, isComponent: boolean): unknown {
  if (Array.isArray(node)) return node.map((n) => publish(n, components, false));
  if (typeof node !== 'object' || node === null) return node;
  const s = node as Record<string, unknown>;
  const name = s['x-component'];
  if (typeof name === 'string' && !isComponent) {
    const component = components[name];
    if (component === undefined) throw new Error(`x-component ${name} is used but not published`);
    const own = typeof s.description === 'string' && s.description !== component.description;
    return { $ref: `#/components/schemas/${name}`, ...(own ? { description: s.description } : {}) };
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s)) if (!(ANNOTATIONS as readonly string[]).includes(k)) out[k] = publish(v, components, false);
  return out;
}

/** `components.schemas` for these named schemas (TypeBox's symbol keys are left behind). */
export function publishSchemas(schemas: Readonly<Record<string, TSchema>>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(schemas).map(([name, s]) => [name, publish(documentSchema(s), schemas, true)]));
}

/** One schema as a document shows it inline (its x-component parts as references). */
export function publishSchema(schema: TSchema, components: Readonly<Record<string, TSchema>> = {}): unknown {
  return publish(documentSchema(schema), components, false);
}

const REQUEST_ID = { description: 'The request id: the client\'s own when it is a sane token, else generated.', schema: { type: 'string' } };

export const schemaRef = (name: string): { $ref: string } => ({ $ref: `#/components/schemas/${name}` });

/** A response object: JSON with this schema (a component name or a schema), or the content given. */
export function responseObject(r: ResponseDoc, components: Readonly<Record<string, TSchema>> = {}): Record<string, unknown> {
  const schema = r.schema === undefined ? undefined : typeof r.schema === 'string' ? schemaRef(r.schema) : publishSchema(r.schema, components);
  return {
    description: r.description,
    ...(r.headers === undefined ? {} : { headers: r.headers }),
    ...(r.content !== undefined ? { content: r.content } : schema === undefined ? {} : { content: { 'application/json': { schema } } }),
  };
}

/**
 * The `paths` of an admin route table. Every route that needs the token also answers
 * `guarded` (401, 403, 429), every route with a body 413; open routes need no security.
 */
export function adminPaths(
  routes: readonly Pick<AdminRoute<unknown>, 'method' | 'path' | 'open' | 'doc'>[],
  guarded: Readonly<Record<number, ResponseDoc>>,
  tooLarge: ResponseDoc,
): Record<string, Record<string, unknown>> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const d = r.doc;
    const responses: Record<number, ResponseDoc> = { ...d.responses, ...(r.open === true ? {} : guarded) };
    if (d.body !== undefined) responses[413] = tooLarge;
    (paths[r.path] ??= {})[r.method.toLowerCase()] = {
      operationId: d.operationId,
      summary: d.summary,
      ...(r.open === true ? { security: [] } : {}),
      ...(d.parameters === undefined ? {} : {
        parameters: d.parameters.map((p) => ({
          name: p.name, in: p.in, required: p.in === 'path' ? true : p.required === true,
          ...(p.description === undefined ? {} : { description: p.description }), schema: publishSchema(p.schema),
        })),
      }),
      ...(d.body === undefined ? {} : { requestBody: { required: true, content: { 'application/json': { schema: schemaRef(d.body) } } } }),
      // The router sets X-Request-Id on every answer.
      responses: Object.fromEntries(Object.entries(responses).map(([status, resp]) => [status, responseObject({ ...resp, headers: { 'X-Request-Id': REQUEST_ID, ...resp.headers } })])),
    };
  }
  return paths;
}

export interface DocumentParts {
  readonly title: string;
  readonly version: string;
  readonly description: string;
  readonly servers: readonly string[];
  readonly paths: Readonly<Record<string, unknown>>;
  /** TypeBox schemas, published as components. */
  readonly schemas: Readonly<Record<string, TSchema>>;
  /** Components written as plain JSON Schema already. */
  readonly plainSchemas?: Readonly<Record<string, unknown>>;
  readonly securitySchemes?: Readonly<Record<string, unknown>>;
  readonly security?: readonly Readonly<Record<string, readonly string[]>>[];
  readonly headers?: Readonly<Record<string, unknown>>;
  readonly parameters?: Readonly<Record<string, unknown>>;
  readonly responses?: Readonly<Record<string, unknown>>;
}

export function openApiDocument(p: DocumentParts): Record<string, unknown> {
  const components: Record<string, unknown> = {};
  if (p.securitySchemes !== undefined) components.securitySchemes = p.securitySchemes;
  if (p.parameters !== undefined) components.parameters = p.parameters;
  if (p.headers !== undefined) components.headers = p.headers;
  if (p.responses !== undefined) components.responses = p.responses;
  components.schemas = { ...p.plainSchemas, ...publishSchemas(p.schemas) };
  return {
    openapi: '3.1.0',
    info: { title: p.title, version: p.version, description: p.description },
    servers: p.servers.map((url) => ({ url })),
    ...(p.security === undefined ? {} : { security: p.security }),
    paths: p.paths,
    components,
  };
}
