import { documentSchema } from '../../common/schema-check.js';
import { SluiceConfigSchema } from './schema.js';

// docs/config-reference.md, rendered from the schema's own descriptions: the one place a
// field is described is where it is defined, so the page cannot drift from the loader.

type Node = Record<string, unknown>;

export interface FieldRow {
  /** As an operator writes it: `plans.NAME.rate`, `routes[].prefix`. */
  readonly path: string;
  readonly type: string;
  readonly default: string;
  readonly description: string;
}

/** Every field of the config file, depth first in the schema's order. */
export function configFields(): FieldRow[] {
  const root = documentSchema(SluiceConfigSchema);
  const rows: FieldRow[] = [];
  walk(root, '', rows, definitionsOf(root));
  return rows;
}

/**
 * Follows a `$ref` into the schema's definitions (routes nest: the route definition
 * refers to itself, and virtual hosts hold routes too). A definition is listed where it is
 * first met (`routes[]`); later references (`routes[].routes`, `virtual_hosts[].routes`)
 * are listed as fields, without repeating every field under them.
 */
type Definitions = { readonly all: Record<string, Node>; readonly seen: Set<string> };

function definitionsOf(root: Node): Definitions {
  return { all: (root.definitions ?? {}) as Record<string, Node>, seen: new Set() };
}

function walk(node: Node, path: string, rows: FieldRow[], defs: Definitions): void {
  const ref = node.$ref;
  if (typeof ref === 'string' && ref.startsWith('#/definitions/')) {
    const name = ref.slice('#/definitions/'.length);
    const target = defs.all[name];
    if (target !== undefined && !defs.seen.has(name)) {
      defs.seen.add(name);
      walk(target, path, rows, defs);
    }
    return;
  }
  const props = node.properties as Record<string, Node> | undefined;
  if (props !== undefined) {
    for (const [name, child] of Object.entries(props)) visit(child, path === '' ? name : `${path}.${name}`, rows, defs);
    return;
  }
  const map = mapValue(node);
  if (map !== undefined) walk(map, `${path}.NAME`, rows, defs);
  const items = node.items as Node | undefined;
  if (items !== undefined && typeof items === 'object') walk(items, `${path}[]`, rows, defs);
  for (const key of ['oneOf', 'anyOf'] as const) {
    const branches = node[key] as Node[] | undefined;
    // A tagged union's branches share the path; each field is listed once.
    if (branches !== undefined) for (const b of branches) walk(b, path, rows, defs);
  }
}

function visit(node: Node, path: string, rows: FieldRow[], defs: Definitions): void {
  if (!rows.some((r) => r.path === path)) {
    rows.push({ path, type: typeOf(node), default: defaultOf(node), description: oneLine(String(node.description ?? '')) });
  }
  walk(node, path, rows, defs);
}

/** The value schema of a mapping keyed by names (TypeBox's Record). */
function mapValue(node: Node): Node | undefined {
  const pattern = node.patternProperties as Record<string, Node> | undefined;
  if (pattern !== undefined) return Object.values(pattern)[0];
  const extra = node.additionalProperties;
  return typeof extra === 'object' && extra !== null ? extra as Node : undefined;
}

function typeOf(node: Node): string {
  if (Array.isArray(node.enum)) return (node.enum as unknown[]).map((v) => `\`${String(v)}\``).join(' \\| ');
  const t = node.type;
  if (t === 'array') {
    const items = node.items as Node | undefined;
    return items === undefined ? 'list' : `list of ${typeOf(items)}`;
  }
  if (t === 'object') return mapValue(node) !== undefined ? 'map' : 'mapping';
  if (t === 'integer' || t === 'number') return `${t}${range(node)}`;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) return t.join(' \\| ');
  const alts = (node.anyOf ?? node.oneOf) as Node[] | undefined;
  if (alts !== undefined) return [...new Set(alts.map(typeOf))].join(' or ');
  return 'any';
}

function range(node: Node): string {
  const lo = node.minimum as number | undefined;
  const hi = node.maximum as number | undefined;
  if (lo !== undefined && hi !== undefined) return ` ${lo}–${hi}`;
  if (lo !== undefined) return ` ≥ ${lo}`;
  if (hi !== undefined) return ` ≤ ${hi}`;
  return '';
}

function defaultOf(node: Node): string {
  if (!('default' in node)) return '';
  const d = node.default;
  if (typeof d === 'object' && d !== null && Object.keys(d).length === 0) return '';
  return `\`${JSON.stringify(d)}\``;
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').replace(/\|/g, '\\|').trim();
}

/** The Markdown page: one table per top-level section. */
export function configReference(): string {
  const rows = configFields();
  const sections = [...new Set(rows.map((r) => r.path.split(/[.[]/)[0]!))];
  const out = [
    '# Configuration reference',
    '',
    '<!-- Generated from gateway/config/schema.ts by `sluice config reference`; do not edit. -->',
    '',
    'Every field of the gateway config file, from the schema the loader checks it with',
    '(`config/sluice.schema.json` is the same schema for editors). `NAME` stands for a name you',
    'choose (a plan, an upstream, a zone); `[]` for each item of a list. How the file is',
    'read (`${ENV}` values, errors, reload) is in [configuration.md](configuration.md).',
    '',
    '## Contents',
    '',
    ...sections.map((s) => `- [\`${s}\`](#${s.replace(/_/g, '_')})`),
    '',
  ];
  for (const s of sections) {
    out.push(`## ${s}`, '', '| field | type | default | description |', '| --- | --- | --- | --- |');
    for (const r of rows.filter((x) => x.path === s || x.path.startsWith(`${s}.`) || x.path.startsWith(`${s}[`))) {
      out.push(`| \`${r.path}\` | ${r.type} | ${r.default} | ${r.description} |`);
    }
    out.push('');
  }
  return out.join('\n');
}
