/**
 * Ports the runner hands to test files: below the kernel's ephemeral range (32768-60999 on
 * Linux), so no port a process binds with port 0 and no outgoing connection's local port
 * can take one, and one block per concurrent file, so two files never pick the same port.
 * Each run starts at a random block so two runs on one host (a shared CI machine) rarely meet;
 * test/harness/ports.ts still checks that a port is free before handing it out.
 */
export const PORT_RANGE = { first: 20_000, last: 32_767 } as const;
export const BLOCK_SIZE = 250;

export type PortBlock = { readonly first: number; readonly last: number };

/** `slots` disjoint blocks inside PORT_RANGE, the first at a random block boundary, wrapping. */
export function portBlocks(slots: number, random: () => number = Math.random): PortBlock[] {
  const count = Math.floor((PORT_RANGE.last - PORT_RANGE.first + 1) / BLOCK_SIZE);
  if (slots > count) throw new Error(`${slots} concurrent files need more than the ${count} port blocks`);
  const start = Math.floor(random() * count);
  return Array.from({ length: slots }, (_, i) => {
    const first = PORT_RANGE.first + ((start + i) % count) * BLOCK_SIZE;
    return { first, last: first + BLOCK_SIZE - 1 };
  });
}

/** The env value a file's process reads (test/harness/ports.ts). */
export const PORTS_ENV = 'SLUICE_TEST_PORTS';
export const formatBlock = (b: PortBlock): string => `${b.first}-${b.last}`;
