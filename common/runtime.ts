/** The oldest Node.js line Sluice supports (package.json engines): the LTS lines that still get security releases. */
export const MIN_NODE_MAJOR = 24;

/**
 * Refuses to run on an older Node.js: an edge proxy facing the internet must not run on a
 * line that no longer gets security fixes (Node 20 reached its end of life on 2026-04-30).
 * npm scripts and bin/sluice-node find the pinned runtime; this catches a plain
 * `node dist/...` on an old system Node.
 */
export function requireSupportedNode(command: string): void {
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= MIN_NODE_MAJOR) return;
  process.stderr.write(`${command}: needs Node.js ${MIN_NODE_MAJOR} or newer, this is ${process.version}. `
    + 'Run it through npm (npm start, npm test) or bin/' + command + ', which use the runtime pinned in package.json.\n');
  process.exit(1);
}
