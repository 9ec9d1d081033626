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
  walk(root, '', rows, new Refs(root.definitions as Record<string, Node> | undefined));
  return rows;
}

/**
 * `$ref`s to the schema's definitions (the route, which nests itself and is used by
 * virtual hosts too): its fields are listed where it first appears, and only there.
 */
class Refs {
  private readonly listed = new Set<string>();

  constructor(private readonly defs: Record<string, Node> = {}) {}

  /** The node a `$ref` names, or the node itself; undefined for a definition already listed. */
  resolve(node: Node): Node | undefined {
    const ref = node.$ref;
    if (typeof ref !== 'string') return node;
    const name = ref.replace('#/definitions/', '');
    if (this.listed.has(name)) return undefined;
    this.listed.add(name);
    return this.defs[name] ?? {};
  }

  target(node: Node): Node {
    return typeof node.$ref === 'string' ? this.defs[node.$ref.replace('#/definitions/', '')] ?? node : node;
  }
}

function walk(start: Node, path: string, rows: FieldRow[], refs: Refs): void {
  const node = refs.resolve(start);
  if (node === undefined) return;
  const props = node.properties as Record<string, Node> | undefined;
  if (props !== undefined) {
    for (const [name, child] of Object.entries(props)) visit(child, path === '' ? name : `${path}.${name}`, rows, refs);
    return;
  }
  const map = mapValue(node);
  if (map !== undefined) walk(map, `${path}.NAME`, rows, refs);
  const items = node.items as Node | undefined;
  if (items !== undefined && typeof items === 'object') walk(items, `${path}[]`, rows, refs);
  for (const key of ['oneOf', 'anyOf'] as const) {
    const branches = node[key] as Node[] | undefined;
    // A tagged union's branches share the path; each field is listed once.
    if (branches !== undefined) for (const b of branches) walk(b, path, rows, refs);
  }
}

function visit(node: Node, path: string, rows: FieldRow[], refs: Refs): void {
  if (!rows.some((r) => r.path === path)) {
    rows.push({ path, type: typeOf(node, refs), default: defaultOf(node), description: oneLine(String(node.description ?? '')) });
  }
  walk(node, path, rows, refs);
}

/** The value schema of a mapping keyed by names (TypeBox's Record). */
function mapValue(node: Node): Node | undefined {
  const pattern = node.patternProperties as Record<string, Node> | undefined;
  if (pattern !== undefined) return Object.values(pattern)[0];
  const extra = node.additionalProperties;
  return typeof extra === 'object' && extra !== null ? extra as Node : undefined;
}

function typeOf(start: Node, refs: Refs): string {
  const node = refs.target(start);
  if (Array.isArray(node.enum)) return (node.enum as unknown[]).map((v) => `\`${String(v)}\``).join(' \\| ');
  const t = node.type;
  if (t === 'array') {
    const items = node.items as Node | undefined;
    return items === undefined ? 'list' : `list of ${typeOf(items, refs)}`;
  }
  if (t === 'object') return mapValue(node) !== undefined ? 'map' : 'mapping';
  if (t === 'integer' || t === 'number') return `${t}${range(node)}`;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) return t.join(' \\| ');
  const alts = (node.anyOf ?? node.oneOf) as Node[] | undefined;
  if (alts !== undefined) return [...new Set(alts.map((a) => typeOf(a, refs)))].join(' or ');
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
