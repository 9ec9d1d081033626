// Loaded with `node --import` into every Node target of the anchors bench: what V8's
// collector did over a window the bench chooses. The first SIGUSR2 opens the window, the
// next closes it and writes $NODE_PROBE_DIR/<pid>.json. Nothing runs between the two
// signals but V8's own GC bookkeeping (v8.GCProfiler), so the target is measured as it is.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GCProfiler, getHeapStatistics } from 'node:v8';

/** What the bench reads back: totals over the window. */
export interface ProbeWindow {
  readonly seconds: number;
  /** Bytes allocated on the JavaScript heap: the growth of the used heap between collections, summed. */
  readonly allocatedBytes: number;
  readonly scavenges: number;
  readonly scavengeMs: number;
  /** The longest scavenge (a pause the requests in flight wait through). */
  readonly scavengeMaxMs: number;
  readonly markCompacts: number;
  readonly gcMs: number;
  /** Old space after the window's first and last collections: a flat heap keeps them equal. */
  readonly oldFirstBytes: number;
  readonly oldLastBytes: number;
}

interface Space { readonly spaceName: string; readonly spaceUsedSize: number }
interface Stat {
  readonly gcType: string;
  readonly cost: number;
  readonly beforeGC: { readonly heapStatistics: { readonly usedHeapSize: number } };
  readonly afterGC: { readonly heapStatistics: { readonly usedHeapSize: number }; readonly heapSpaceStatistics: readonly Space[] };
}

const dir = process.env.NODE_PROBE_DIR ?? '.';
let open: { profiler: GCProfiler; used: number; at: number } | undefined;

function summarise(stats: readonly Stat[], used0: number, used1: number, seconds: number): ProbeWindow {
  let allocated = 0;
  let after = used0;
  let scavenges = 0;
  let scavengeMs = 0;
  let scavengeMaxMs = 0;
  let markCompacts = 0;
  let gcMs = 0;
  const old: number[] = [];
  for (const s of stats) {
    allocated += Math.max(0, s.beforeGC.heapStatistics.usedHeapSize - after);
    after = s.afterGC.heapStatistics.usedHeapSize;
    const ms = s.cost / 1000;
    gcMs += ms;
    if (s.gcType === 'Scavenge' || s.gcType === 'MinorMarkSweep') {
      scavenges++;
      scavengeMs += ms;
      scavengeMaxMs = Math.max(scavengeMaxMs, ms);
    } else if (s.gcType === 'MarkSweepCompact') {
      markCompacts++;
    }
    old.push(s.afterGC.heapSpaceStatistics.find((x) => x.spaceName === 'old_space')?.spaceUsedSize ?? 0);
  }
  allocated += Math.max(0, used1 - after);
  return { seconds, allocatedBytes: allocated, scavenges, scavengeMs, scavengeMaxMs, markCompacts, gcMs, oldFirstBytes: old[0] ?? 0, oldLastBytes: old.at(-1) ?? 0 };
}

process.on('SIGUSR2', () => {
  if (open === undefined) {
    const profiler = new GCProfiler();
    profiler.start();
    open = { profiler, used: getHeapStatistics().used_heap_size, at: performance.now() };
    return;
  }
  const { profiler, used, at } = open;
  open = undefined;
  const stats = (profiler.stop()?.statistics ?? []) as unknown as Stat[];
  const w = summarise(stats, used, getHeapStatistics().used_heap_size, (performance.now() - at) / 1000);
  writeFileSync(join(dir, `${process.pid}.json`), JSON.stringify(w));
});
