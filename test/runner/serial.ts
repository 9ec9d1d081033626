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
  {
    file: 'gateway/limits/limits.slow-store.test',
    // Its closed-policy case waited 60 s after SIGCONT for the store breaker to close in 2
    // of 9 full parallel runs (2026-12-07), with the gateway answering 503s all along and
    // logging nothing from Redis (no late answer, no probe success): it never happened alone
    // (7 runs, 3 of them side by side with copies of itself). Cause not found; it runs alone
    // until it is, and the harness now prints the gateway's last lines when it happens.
    why: 'its closed-policy case hung waiting for the breaker to close in 2 of 9 parallel runs, never alone; cause not found (docs/testing.md)',
  },
  {
    file: 'load-tests/faults/faults.scenarios.test',
    // A Sentinel fleet (6 redis-servers), 3 gateways of 2 workers and a client on network
    // namespace hosts, judged by bounds that are formulas of each fault's span and the
    // fleet's detection times. Beside three other files on 2 cores it over-admitted 5x
    // its cut-master bound in our runs: the fleet could not keep the rates the bounds assume.
    why: 'its fail-open bounds assume the fleet keeps its rates, which other files beside it on 2 cores take away',
  },
];
