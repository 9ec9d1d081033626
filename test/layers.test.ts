import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { cruise, type ICruiseResult } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';

// The layers (docs/layers.md): the import rules in .dependency-cruiser.cjs, and no cycle
// between components. Both read the sources, so this checks what the next commit holds.

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SOURCES = ['common', 'gateway', 'backends', 'lua-compat', 'load-tests', 'test', 'deploy'];

async function cruiseSources(): Promise<ICruiseResult> {
  process.chdir(ROOT);
  const options = await extractDepcruiseOptions('./.dependency-cruiser.cjs');
  const reported = await cruise(SOURCES, options, undefined, { tsConfig: extractTSConfig('tsconfig.json') });
  return reported.output as ICruiseResult;
}

const result = cruiseSources();

test('the import rules of .dependency-cruiser.cjs hold', async () => {
  const { modules, summary } = await result;
  assert.ok(modules.length > 300, `only ${modules.length} modules were read`);
  const broken = summary.violations.map((v) => `${v.rule.name}: ${v.from} -> ${v.to}${v.cycle ? ` (cycle: ${v.cycle.map((c) => c.name).join(' -> ')})` : ''}`);
  assert.deepEqual(broken, []);
});

/**
 * The config's data (its schema and the types derived from it), which every component
 * reads, is a component below the config's loader (load.ts, semantics.ts), which calls
 * into route/ and listen/ to check and resolve what they own.
 */
const CONFIG_DATA = /^gateway\/config\/(types\.ts|schema\.ts|schema\/)/;

/**
 * A component is a folder directly under gateway/ or backends/, with its subfolders (a
 * list in image/ and its entries in image/steps/ are one component); a file directly
 * in gateway/ or backends/ is one of its own; elsewhere, the top folder.
 */
function componentOf(path: string): string {
  if (CONFIG_DATA.test(path)) return 'gateway/config (data)';
  const parts = path.split('/');
  if ((parts[0] === 'gateway' || parts[0] === 'backends') && parts.length > 2) return `${parts[0]}/${parts[1]}`;
  return parts.length === 2 && (parts[0] === 'gateway' || parts[0] === 'backends') ? path : parts[0]!;
}

/**
 * The one exception: every stage takes the request context (gateway/pipeline/context.ts),
 * plain data that names the types the stages fill in. Its type, imported by the stages,
 * is not an edge; any other import of the pipeline is.
 */
function counts(to: string, typeOnly: boolean): boolean {
  return !(typeOnly && to === 'gateway/pipeline/context.ts');
}

test('no cycle between components (type-only imports count, but for the request context\'s type)', async () => {
  const { modules } = await result;
  const edges = new Map<string, Map<string, string[]>>();
  for (const m of modules) {
    if (m.source.startsWith('node_modules/') || m.source.endsWith('.test.ts')) continue;
    const from = componentOf(m.source);
    for (const d of m.dependencies) {
      if (d.coreModule || d.resolved.startsWith('node_modules/')) continue;
      const to = componentOf(d.resolved);
      if (to === from || !counts(d.resolved, d.dependencyTypes.includes('type-only'))) continue;
      const out = edges.get(from) ?? new Map<string, string[]>();
      edges.set(from, out);
      out.set(to, [...(out.get(to) ?? []), `${m.source} -> ${d.resolved}`]);
    }
  }
  const cycles = stronglyConnected([...edges.keys()], (c) => [...(edges.get(c)?.keys() ?? [])]).filter((scc) => scc.length > 1);
  const described = cycles.map((scc) => scc.flatMap((a) => scc.flatMap((b) => edges.get(a)?.get(b) ?? [])).join('\n  '));
  assert.deepEqual(described, [], 'components that import each other (the imports that make the cycle)');
});

test('componentOf: a folder under gateway/ or backends/ with its subfolders, a file directly in them on its own', () => {
  assert.equal(componentOf('backends/image/steps/crop.ts'), 'backends/image');
  assert.equal(componentOf('gateway/store/types.ts'), 'gateway/store');
  assert.equal(componentOf('gateway/config/load.ts'), 'gateway/config');
  assert.equal(componentOf('gateway/config/schema/routes.ts'), 'gateway/config (data)');
  assert.equal(componentOf('gateway/server.ts'), 'gateway/server.ts');
  assert.equal(componentOf('common/errors.ts'), 'common');
  assert.equal(componentOf('test/harness/redis.ts'), 'test');
});

/** Tarjan's strongly connected components. */
function stronglyConnected(nodes: readonly string[], next: (n: string) => readonly string[]): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of next(v)) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      out.push(scc);
    }
  };
  for (const n of nodes) if (!index.has(n)) visit(n);
  return out;
}
