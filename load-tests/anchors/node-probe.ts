// Loaded with `node --import` into every Node target of the anchors bench: what V8's
// collector did over a window the bench chooses. The first SIGUSR2 opens the window, the
// next closes it and writes $NODE_PROBE_DIR/<pid>.json. Nothing runs between the two
// signals but V8's own GC bookkeeping (v8.GCProfiler), so the target is measured as it is.
// With NODE_PROBE_HEAP=1 the window also samples allocations (one per 16 KiB) and keeps
// those that outlived a scavenge, written as <pid>.heapprofile: what a request leaves
// behind, by allocation site (load-tests/heap-summary.ts reads it).
import { Session } from 'node:inspector/promises';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GCProfiler, getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** What the bench reads back: totals over the window. */
export interface ProbeWindow {
  readonly seconds: number;
  /** Bytes allocated on the JavaScript heap: the growth of the used heap between collections, summed. */
  readonly allocatedBytes: number;
  /**
   * Bytes that outlived a scavenge (copied within the young generation or promoted to old
   * space): what the collector had to copy. A proxy's should be near zero.
   */
  readonly survivedBytes: number;
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
  readonly beforeGC: { readonly heapStatistics: { readonly usedHeapSize: number }; readonly heapSpaceStatistics: readonly Space[] };
  readonly afterGC: { readonly heapStatistics: { readonly usedHeapSize: number }; readonly heapSpaceStatistics: readonly Space[] };
}

const dir = process.env.NODE_PROBE_DIR ?? '.';
let open: { profiler: GCProfiler; used: number; at: number } | undefined;
const heap = process.env.NODE_PROBE_HEAP === '1' ? new Session() : undefined;
heap?.connect();
// A scavenge right before the sampling stops, so what the young generation still holds
// from the last requests (garbage not yet collected) is not counted as having outlived one.
let scavenge: (() => void) | undefined;
if (heap !== undefined) {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as (o: { type: 'minor' }) => void;
  scavenge = () => gc({ type: 'minor' });
}

function summarise(stats: readonly Stat[], used0: number, used1: number, seconds: number): ProbeWindow {
  const used = (spaces: readonly Space[], name: string): number => spaces.find((x) => x.spaceName === name)?.spaceUsedSize ?? 0;
  let allocated = 0;
  let survived = 0;
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
      const promoted = used(s.afterGC.heapSpaceStatistics, 'old_space') - used(s.beforeGC.heapSpaceStatistics, 'old_space');
      survived += used(s.afterGC.heapSpaceStatistics, 'new_space') + Math.max(0, promoted);
      scavenges++;
      scavengeMs += ms;
      scavengeMaxMs = Math.max(scavengeMaxMs, ms);
    } else if (s.gcType === 'MarkSweepCompact') {
      markCompacts++;
    }
    old.push(used(s.afterGC.heapSpaceStatistics, 'old_space'));
  }
  allocated += Math.max(0, used1 - after);
  return { seconds, allocatedBytes: allocated, survivedBytes: survived, scavenges, scavengeMs, scavengeMaxMs, markCompacts, gcMs, oldFirstBytes: old[0] ?? 0, oldLastBytes: old.at(-1) ?? 0 };
}

process.on('SIGUSR2', () => {
  if (open === undefined) {
    const profiler = new GCProfiler();
    profiler.start();
    open = { profiler, used: getHeapStatistics().used_heap_size, at: performance.now() };
    void heap?.post('HeapProfiler.startSampling', { samplingInterval: 16384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: false });
    return;
  }
  scavenge?.();
  void heap?.post('HeapProfiler.stopSampling').then(({ profile }) => writeFileSync(join(dir, `${process.pid}.heapprofile`), JSON.stringify(profile)));
  const { profiler, used, at } = open;
  open = undefined;
  const stats = (profiler.stop()?.statistics ?? []) as unknown as Stat[];
  const w = summarise(stats, used, getHeapStatistics().used_heap_size, (performance.now() - at) / 1000);
  writeFileSync(join(dir, `${process.pid}.json`), JSON.stringify(w));
});
