import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { CLI } from '../../test/harness/gateway.js';
import { loadScenario } from './scenario.js';
import { scenarioJsonSchema } from './scenario-schema.js';

// The published scenario schema is the one the loader checks with, the committed copy has
// not drifted from it, and every shipped scenario points editors at it and passes it.

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DIR = join(ROOT, 'load-tests/scenarios');
const COMMITTED = join(DIR, 'scenario.schema.json');
const shipped = readdirSync(DIR).filter((f) => f.endsWith('.yaml')).sort();

test('`sluice loadtest --schema` prints the schema, and scenario.schema.json is that schema', async () => {
  const { stdout: printed } = await promisify(execFile)(process.execPath, [CLI, 'loadtest', '--schema'], { timeout: 60_000 });
  assert.equal(printed, `${JSON.stringify(scenarioJsonSchema(), null, 2)}\n`);
  assert.equal(readFileSync(COMMITTED, 'utf8'), printed, 'regenerate: sluice loadtest --schema > load-tests/scenarios/scenario.schema.json');
});

test('every shipped scenario names the schema for editors, and passes it with plain ajv and with the loader', () => {
  assert.ok(shipped.length >= 2, shipped.join(' '));
  // As an editor would: no Sluice keywords, no discriminator support, unknown keywords ignored.
  const validate = new Ajv({ strict: false, allErrors: true }).compile(JSON.parse(readFileSync(COMMITTED, 'utf8')));
  for (const name of shipped) {
    const text = readFileSync(join(DIR, name), 'utf8');
    assert.equal(text.split('\n')[0], '# yaml-language-server: $schema=./scenario.schema.json', name);
    assert.ok(validate(parse(text)), `${name}: ${JSON.stringify(validate.errors)}`);
    assert.ok(loadScenario(join(DIR, name)).groups.length > 0, name);
  }
  const broken = { ...parse(readFileSync(join(DIR, shipped[0]!), 'utf8')), colour: 'blue', arrival: { profile: 'constant', rate: -1 } };
  assert.equal(validate(broken), false);
  const flagged = new Set(validate.errors!.map((e) => e.instancePath));
  assert.ok(flagged.has('') && flagged.has('/arrival/rate'), `the editor flags both fields: ${[...flagged].join(' ')}`);
});
