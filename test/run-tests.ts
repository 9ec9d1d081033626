// `npm test`: every compiled *.test.js under dist/, in one node:test run. Node 20's
// `--test DIR` would also run every .js under any folder named test/ (the harness),
// so the files are listed explicitly.
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireSupportedNode } from '../common/runtime.js';

// The suite runs on the pinned runtime (npm puts node_modules/.bin first on the PATH).
requireSupportedNode('npm test');

const dist = fileURLToPath(new URL('../', import.meta.url));
const root = fileURLToPath(new URL('../../', import.meta.url));

/**
 * The system packages the suite needs (test/system-deps.sh, the list .ci/run installs):
 * installed here when we can (root, with apt), else named at once with the one command
 * that installs them, instead of a run full of failures that do not say what was missing.
 */
function ensureSystemPackages(): void {
  const deps = join(root, 'test/system-deps.sh');
  const missing = execFileSync(deps, { encoding: 'utf8' }).trim();
  if (missing === '') return;
  const canInstall = process.getuid?.() === 0 && process.env.SLUICE_TEST_NO_INSTALL !== '1'
    && execFileSync('sh', ['-c', 'command -v apt-get || true'], { encoding: 'utf8' }).trim() !== '';
  if (canInstall) {
    process.stderr.write(`npm test: the suite needs ${missing}; installing with apt-get\n`);
    execFileSync(deps, ['--install'], { stdio: 'inherit' });
    return;
  }
  process.stderr.write(`npm test: the suite needs these Debian packages, which are missing: ${missing}\n`
    + `install them with:  sudo test/system-deps.sh --install   (or: sudo apt-get install ${missing})\n`);
  process.exit(2);
}

ensureSystemPackages();

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : testFiles(p);
    return e.name.endsWith('.test.js') ? [p] : [];
  });
}

const files = testFiles(dist).sort();
const filter = process.argv[2];
const chosen = filter === undefined ? files : files.filter((f) => relative(dist, f).includes(filter));
// With no file named, `node --test` would look for tests on its own and run everything.
if (chosen.length === 0) {
  process.stderr.write(`no test file matches ${JSON.stringify(filter)}\n`);
  process.exit(2);
}
// --test-force-exit: a file whose tests are done exits even if something it used left a
// handle open (a client library's timer, say), instead of holding the run until CI's limit.
const child = spawn(process.execPath, ['--test', '--test-concurrency=1', '--test-force-exit', ...chosen], { stdio: 'inherit' });
child.on('exit', (code) => { process.exitCode = code ?? 1; });
