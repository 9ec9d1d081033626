import type { TSchema } from '@sinclair/typebox';
import { ANNOTATIONS } from './schema-check.js';

// Validator schemas as OpenAPI 3.1 components: the same JSON Schema without the
// validator-only annotations, and every subschema marked `x-component: Name` written
// as a `$ref` to that component (with the use's own description, when it has another).

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
  return Object.fromEntries(Object.entries(schemas).map(([name, s]) => [name, publish(s, schemas, true)]));
}
