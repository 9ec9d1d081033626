// A seeded generator for what must be reproducible from a seed (a load test's schedule,
// a property test's inputs), never for anything secret.

/** mulberry32: small, fast, seeded; the schedule must be reproducible, not cryptographic. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
