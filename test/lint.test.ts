import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';

// The linter (eslint.config.js: typescript-eslint with the types) over every source,
// as `npm run lint` runs it. It reads the sources, so it judges what is committed.

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

test('the sources are clean under eslint.config.js', async () => {
  const eslint = new ESLint({ cwd: ROOT });
  const results = await eslint.lintFiles(['.']);
  assert.ok(results.length > 300, `only ${results.length} files were linted`);
  const problems = results.flatMap((r) => r.messages.map((m) => `${r.filePath.slice(ROOT.length)}:${m.line}:${m.column} ${m.ruleId ?? 'parse'}: ${m.message}`));
  assert.deepEqual(problems, [], 'run `npm run lint` to see them');
});
