import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

// Run from dist/deploy/: the rule files are read where they are shipped, in the source tree.
const PROM = fileURLToPath(new URL('../../deploy/prometheus/', import.meta.url));
const README = fileURLToPath(new URL('../../deploy/README.md', import.meta.url));

function promtool(...args: string[]): string {
  try {
    return execFileSync('promtool', args, { cwd: PROM, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { code?: string; stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error('promtool not found: install Debian\'s prometheus package (.ci/run does)');
    throw new Error(`promtool ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

interface RuleFile { groups: { rules: { alert?: string; record?: string }[] }[] }
interface TestFile { tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[] }

const alerts = (parse(readFileSync(`${PROM}sluice-rules.yml`, 'utf8')) as RuleFile).groups
  .flatMap((g) => g.rules).flatMap((r) => (r.alert === undefined ? [] : [r.alert]));

test('promtool check rules accepts the rule file', () => {
  assert.match(promtool('check', 'rules', 'sluice-rules.yml'), /SUCCESS: \d+ rules found/);
});

test('promtool check config accepts the scrape config (and the rule file it loads)', () => {
  assert.match(promtool('check', 'config', 'prometheus.yml'), /is valid prometheus config file/);
});

test('promtool test rules passes', () => {
  assert.match(promtool('test', 'rules', 'sluice-rules.test.yml'), /SUCCESS/);
});

// promtool fails a case on any alert it did not expect, so the series beside the firing
// ones in each case are the "does not fire" half; this checks the firing half exists.
test('every alert has a test case where it fires', () => {
  const cases = (parse(readFileSync(`${PROM}sluice-rules.test.yml`, 'utf8')) as TestFile).tests.flatMap((t) => t.alert_rule_test ?? []);
  assert.ok(alerts.length >= 15, `only ${alerts.length} alerts found`);
  for (const a of alerts) {
    assert.ok(cases.some((c) => c.alertname === a && c.exp_alerts.length > 0), `${a}: no test where it fires`);
  }
});

test('every alert has a runbook line in deploy/README.md', () => {
  const readme = readFileSync(README, 'utf8');
  for (const a of alerts) assert.match(readme, new RegExp(`^\\| \`${a}\` \\|`, 'm'), `${a}: no runbook row`);
});
