import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ENV_PREFIX as WEBHOOKS_PREFIX, FLAGS as WEBHOOKS_FLAGS } from '../webhooks/config.js';
import { ENV_PREFIX as BACKEND_PREFIX, FLAGS as BACKEND_FLAGS } from './config.js';
import { flagHelp } from './flags.js';

// backends/README.md's flag tables say what --help says, row for row: the schema is
// the one definition, the tables are its copy for readers.
const README = readFileSync(new URL('../../../backends/README.md', import.meta.url), 'utf8');

for (const [command, schema, prefix] of [['sluice-backend', BACKEND_FLAGS, BACKEND_PREFIX], ['sluice-webhooks', WEBHOOKS_FLAGS, WEBHOOKS_PREFIX]] as const) {
  test(`backends/README.md lists every ${command} flag as --help describes it`, () => {
    const rows = README.split('\n').filter((l) => l.includes(`| \`${prefix}`));
    const expected = flagHelp(schema, prefix).map((h) => `| \`${h.synopsis}\` | \`${h.env}\` | ${h.text} |`);
    assert.deepEqual(rows, expected, 'rewrite the table from these rows');
  });
}
