/**
 * Files that run alone, after the parallel phase, because what they prove is about timing
 * under a load of their own that other files running beside them would spoil. Keep this
 * list short: a test that can be made to hold beside others belongs in the parallel phase.
 * Each entry names the file (a path under dist/, without .js) and why it cannot share.
 */
export const SERIAL: readonly { readonly file: string; readonly why: string }[] = [];
