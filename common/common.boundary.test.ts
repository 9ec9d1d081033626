import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';

// common/ is what the gateway and the backends share; it imports from neither, so
// neither side reaches into the other's internals through it.
const SOURCE = new URL('../../common/', import.meta.url);

test('common/ imports nothing from gateway/ or backends/', () => {
  const files = readdirSync(SOURCE, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
  assert.ok(files.length > 5, 'the sources are beside the compiled tests');
  for (const f of files) {
    const text = readFileSync(new URL(f, SOURCE), 'utf8');
    for (const line of text.split('\n')) {
      assert.doesNotMatch(line, /^(import|export)\b.*from '(\.\.\/)+(gateway|backends)\//, `common/${f}: ${line}`);
    }
  }
});
