// Summarises V8 .cpuprofile files (node --cpu-prof): self time by function and by where
// the code lives (Sluice, undici, ioredis, pino, prom-client, Node internals, GC...).
//   node dist/load-tests/profile-summary.js FILE.cpuprofile [TOP]
import { readFileSync } from 'node:fs';

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number; children?: number[] }
interface Profile { nodes: Node[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

function area(url: string, fn: string): string {
  if (url === '') return fn.startsWith('(') ? fn : '(native)';
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m !== null) return m[1]!;
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const own = /\/dist\/(gateway\/[^/]+|backends\/[^/]+|[^/]+)/.exec(url);
  return own !== null ? `sluice ${own[1]}` : url;
}

const [file, topArg] = process.argv.slice(2);
if (file === undefined) { console.error('usage: profile-summary FILE.cpuprofile [TOP]'); process.exit(2); }
const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const selfUs = new Map<number, number>();
p.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
const byFn = new Map<string, number>();
const byArea = new Map<string, number>();
for (const [id, us] of selfUs) {
  const n = byId.get(id)!;
  const f = n.callFrame;
  const where = f.url === '' ? '' : `${f.url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${f.lineNumber + 1}`;
  const key = `${f.functionName || '(anonymous)'} ${where}`;
  byFn.set(key, (byFn.get(key) ?? 0) + us);
  const a = area(f.url, f.functionName);
  byArea.set(a, (byArea.get(a) ?? 0) + us);
}
const pct = (us: number): string => `${(us * 100 / total).toFixed(1).padStart(5)}%`;
const idle = byArea.get('(idle)') ?? 0;
console.log(`${file}: ${(total / 1e6).toFixed(2)} s sampled, ${pct(total - idle)} busy`);
console.log('\nself time by area:');
for (const [a, us] of [...byArea].sort((x, y) => y[1] - x[1]).slice(0, 15)) console.log(`  ${pct(us)}  ${a}`);
console.log(`\ntop ${topArg ?? 25} functions by self time:`);
for (const [f, us] of [...byFn].sort((x, y) => y[1] - x[1]).slice(0, Number(topArg ?? 25))) console.log(`  ${pct(us)}  ${f}`);
