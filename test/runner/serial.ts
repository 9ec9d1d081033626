/**
 * Files that run alone, after the parallel phase, because what they prove is about timing
 * under a load of their own that other files running beside them would spoil. Keep this
 * list short: a test that can be made to hold beside others belongs in the parallel phase.
 * Each entry names the file (a path under dist/, without .js) and why it cannot share.
 */
export const SERIAL: readonly { readonly file: string; readonly why: string }[] = [
  {
    file: 'gateway/limits/limits.busy-host.test',
    // Its bounds hold beside anything; this one promise needs the host to itself, and it
    // measures whether it has it (test/harness/host-load.ts), so it is judged wherever
    // the machine is otherwise quiet, CI included, instead of never.
    why: '"on a quiet host the store decides every request" is judged only when the machine is otherwise idle',
  },
];
