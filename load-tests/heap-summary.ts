// Reads a sampling heap profile (.heapprofile: node --heap-prof, Chrome DevTools, or the
// anchors bench's probe with NODE_PROBE_HEAP=1) and prints its bytes by allocation site,
// the largest first, and the stacks that allocated them.
//   node dist/load-tests/heap-summary.js FILE.heapprofile [N=30] [REQUESTS]
// With REQUESTS (how many requests the profile's window served) the bytes are per request.
import { readFileSync } from 'node:fs';

interface CallFrame { functionName: string; url: string; lineNumber: number }
interface Node { id: number; callFrame: CallFrame; children: Node[] }
interface Profile { head: Node; samples: { size: number; nodeId: number }[] }

const [file, n = '30', requests] = process.argv.slice(2);
if (file === undefined) {
  console.error('usage: heap-summary FILE.heapprofile [N] [REQUESTS]');
  process.exit(2);
}
const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const node = new Map<number, Node>();
const parent = new Map<number, Node>();
(function walk(x: Node): void {
  node.set(x.id, x);
  for (const c of x.children) { parent.set(c.id, x); walk(c); }
})(p.head);
const site = (x: Node): string => {
  const url = x.callFrame.url.replace(/^file:\/\//, '').replace(/.*\/node_modules\//, '').replace(/.*\/dist\//, '');
  return `${x.callFrame.functionName || '(anonymous)'} ${url}:${x.callFrame.lineNumber + 1}`;
};
const bySite = new Map<string, number>();
const byStack = new Map<string, number>();
let total = 0;
for (const s of p.samples) {
  const x = node.get(s.nodeId)!;
  total += s.size;
  bySite.set(site(x), (bySite.get(site(x)) ?? 0) + s.size);
  const stack: string[] = [];
  for (let y: Node | undefined = x; y !== undefined && stack.length < 5; y = parent.get(y.id)) stack.push(site(y));
  byStack.set(stack.join(' < '), (byStack.get(stack.join(' < ')) ?? 0) + s.size);
}
const per = requests === undefined ? 1 : Number(requests);
const unit = requests === undefined ? 'KiB' : 'B/req';
const fmt = (b: number): string => (requests === undefined ? (b / 1024).toFixed(0) : (b / per).toFixed(0)).padStart(8);
console.log(`${file}: ${fmt(total)} ${unit} in ${p.samples.length} samples`);
const top = (m: Map<string, number>): void => {
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, Number(n))) console.log(`${fmt(v)} ${(100 * v / total).toFixed(1).padStart(5)}%  ${k}`);
};
console.log(`\nby site (${unit}):`);
top(bySite);
console.log(`\nby stack (${unit}):`);
top(byStack);
