import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/**
 * The system packages the suite needs (test/system-deps.sh, the list .ci/run installs):
 * installed here when we can (root, with apt), else named at once with the one command
 * that installs them, instead of a run full of failures that do not say what was missing.
 */
export function ensureSystemPackages(root: string): void {
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
