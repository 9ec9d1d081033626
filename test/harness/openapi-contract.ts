import SwaggerParser from '@apidevtools/swagger-parser';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { IncomingHttpHeaders } from 'node:http';

// Checks live answers against an OpenAPI 3.1 document: the document itself by a real
// validator (@apidevtools/swagger-parser), then each answer's status, headers and body by
// JSON Schema 2020-12 (ajv), as a client generated from the document would expect them.

type Json = Record<string, any>;

export interface Seen {
  readonly method: string;
  /** Path and query as sent. */
  readonly url: string;
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/** Headers whose presence the contract must explain: an answer carrying one undocumented is a drift. */
const CONTRACT_HEADERS = [
  'x-request-id', 'ratelimit', 'ratelimit-policy', 'retry-after', 'www-authenticate', 'deprecation', 'sunset', 'allow',
  'x-backend-load', 'x-image-result', 'content-location',
];

export interface Contract {
  readonly doc: Json;
  /** Every problem with one answer; empty when the document describes it. */
  check(seen: Seen): string[];
  /** `method template` of each operation an answer was checked against. */
  readonly used: Set<string>;
  /** Every operation of the document. */
  operations(): string[];
}

export async function contractOf(document: object): Promise<Contract> {
  await SwaggerParser.validate(structuredClone(document) as never);
  const doc = (await SwaggerParser.dereference(structuredClone(document) as never)) as Json;
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  const compiled = new Map<object, ReturnType<typeof ajv.compile>>();
  const validate = (schema: object, value: unknown): string | undefined => {
    let v = compiled.get(schema);
    if (v === undefined) { v = ajv.compile(schema); compiled.set(schema, v); }
    return v(value) ? undefined : ajv.errorsText(v.errors);
  };
  const templates = Object.keys(doc.paths as object).map((t) => ({ t, re: new RegExp(`^${t.replace(/\{[^}]+\}/g, '[^/]+')}$`) }));
  const used = new Set<string>();
  /**
   * A method the document does not list for a path: the only answer it allows is 405, its
   * Allow header naming exactly the documented methods (and HEAD beside GET), with the error body.
   */
  const undocumentedMethod = (s: Seen, template: string, where: string): string[] => {
    if (s.status !== 405) return [`${where}: ${s.method} is not documented for ${template}`];
    const methods = Object.keys(doc.paths[template] as object).filter((m) => m !== 'parameters').map((m) => m.toUpperCase());
    const allow = String(s.headers.allow ?? '').split(',').map((m) => m.trim()).filter((m) => m !== '' && m !== 'HEAD');
    const out: string[] = [];
    if (allow.sort().join() !== methods.sort().join()) out.push(`${where}: Allow ${JSON.stringify(s.headers.allow)} is not the documented ${methods.join(', ')}`);
    const problem = validate(doc.components.schemas.Error as object, JSON.parse(s.body.toString('utf8')));
    if (problem !== undefined) out.push(`${where}: body: ${problem}`);
    return out;
  };
  return {
    doc,
    used,
    operations: () => Object.entries(doc.paths as Json).flatMap(([t, ops]) => Object.keys(ops as object).filter((m) => m !== 'parameters').map((m) => `${m} ${t}`)),
    check(s) {
      const path = new URL(s.url, 'http://x').pathname;
      const method = s.method.toLowerCase();
      const where = `${s.method} ${path} → ${s.status}`;
      const template = templates.find((x) => x.re.test(path))?.t;
      if (template === undefined) return [`${where}: no path in the document`];
      const op = doc.paths[template][method] as Json | undefined;
      if (op === undefined) return undocumentedMethod(s, template, where);
      used.add(`${method} ${template}`);
      const resp = (op.responses[String(s.status)] ?? op.responses.default) as Json | undefined;
      if (resp === undefined) return [`${where}: status not documented (documented: ${Object.keys(op.responses).join(' ')})`];
      const out: string[] = [];
      const documented = new Map(Object.entries((resp.headers ?? {}) as Json).map(([k, v]) => [k.toLowerCase(), v as Json]));
      for (const [name, h] of documented) {
        const v = s.headers[name];
        if (v === undefined) {
          if (h.required === true) out.push(`${where}: required header ${name} missing`);
          continue;
        }
        const value = h.schema?.type === 'integer' && /^-?\d+$/.test(String(v)) ? Number(v) : String(v);
        const problem = h.schema === undefined ? undefined : validate(h.schema, value);
        if (problem !== undefined) out.push(`${where}: header ${name} ${JSON.stringify(v)}: ${problem}`);
      }
      for (const name of CONTRACT_HEADERS) if (s.headers[name] !== undefined && !documented.has(name)) out.push(`${where}: header ${name} is sent but not documented`);
      const type = String(s.headers['content-type'] ?? '').split(';')[0]!.trim();
      if (s.body.length === 0 || s.method === 'HEAD') return out;
      const content = (resp.content ?? {}) as Json;
      const media = content[type] ?? content[`${type.split('/')[0]}/*`] ?? content['*/*'];
      if (media === undefined) return [...out, `${where}: content-type ${type} not documented (documented: ${Object.keys(content).join(' ') || 'no body'})`];
      if (type === 'application/json' && media.schema !== undefined) {
        const problem = validate(media.schema, JSON.parse(s.body.toString('utf8')));
        if (problem !== undefined) out.push(`${where}: body ${s.body.toString('utf8').slice(0, 300)}: ${problem}`);
      }
      return out;
    },
  };
}
