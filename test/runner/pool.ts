/**
 * Runs `work` on every item, at most `slots` at once, in the order given; each call gets
 * the slot it holds (0..slots-1), which no other running call holds. Once `stop` is
 * aborted no further item starts.
 */
export async function inPool<T, R>(items: readonly T[], slots: number, work: (item: T, slot: number) => Promise<R>, stop?: AbortSignal): Promise<R[]> {
  const results: R[] = [];
  let next = 0;
  const lane = async (slot: number): Promise<void> => {
    while (next < items.length && stop?.aborted !== true) {
      const item = items[next++]!;
      results.push(await work(item, slot));
    }
  };
  await Promise.all(Array.from({ length: Math.min(slots, items.length) }, (_, slot) => lane(slot)));
  return results;
}
