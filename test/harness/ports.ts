import { createServer } from 'node:net';

/**
 * The block of ports the runner gave this file (test/runner/port-blocks.ts): below the
 * ephemeral range and disjoint from every other file running now. Absent when a file runs
 * on its own (`node --test file`); then the kernel picks.
 */
const block = ((): { first: number; size: number } | undefined => {
  const m = /^(\d+)-(\d+)$/.exec(process.env.SLUICE_TEST_PORTS ?? '');
  return m === null ? undefined : { first: Number(m[1]), size: Number(m[2]) - Number(m[1]) + 1 };
})();
// A child process of a test (a bench, a CLI) inherits the block: start where its pid says,
// so it does not walk the same ports as its parent.
let next = block === undefined ? 0 : process.pid % block.size;

/** A loopback port nobody is listening on right now (for servers that cannot bind port 0 themselves). */
export async function freePort(): Promise<number> {
  if (block === undefined) return bindable(0);
  for (let tried = 0; tried < block.size; tried++) {
    const port = block.first + (next++ % block.size);
    try { return await bindable(port); } catch { /* taken by something outside the suite: try the next */ }
  }
  throw new Error(`no free port in SLUICE_TEST_PORTS=${process.env.SLUICE_TEST_PORTS}`);
}

/** Binds `port` on loopback and lets it go again, resolving with the port bound. */
function bindable(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => {
      const bound = (s.address() as { port: number }).port;
      s.close(() => resolve(bound));
    });
  });
}
