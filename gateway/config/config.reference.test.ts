import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { configFields, configReference } from './reference.js';

// docs/config-reference.md is rendered from the schema's descriptions; it must be what the
// code renders, and every field must say what it does.

const FILE = new URL('../../../docs/config-reference.md', import.meta.url);
const REGENERATE = 'npm run build && bin/sluice config reference > docs/config-reference.md';

describe('config reference: docs/config-reference.md', () => {
  it('is what the code renders from the schema', () => {
    assert.ok(readFileSync(FILE, 'utf8') === configReference(), `docs/config-reference.md is out of date; regenerate it: ${REGENERATE}`);
  });

  it('describes every field', () => {
    const bare = configFields().filter((f) => f.description === '').map((f) => f.path);
    assert.deepEqual(bare, [], 'give these fields a description in gateway/config/schema');
  });

  it('lists fields at every depth: maps, lists and nested sections', () => {
    const paths = new Set(configFields().map((f) => f.path));
    for (const p of ['server.port', 'store.breaker.failure_percent', 'plans.NAME.rate', 'upstreams.NAME.targets[].weight', 'routes[].limit_req[].zone']) {
      assert.ok(paths.has(p), `${p} missing from ${[...paths].join(', ')}`);
    }
  });
});
