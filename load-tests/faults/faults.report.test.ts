import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { reportTable, writeReport } from './report.js';
import type { ScenarioResult } from './scenario.js';

// The fault harness's report (SLUICE_FAULTS_REPORT=DIR for the CI scenarios,
// `bench:faults --report DIR` for the soak): faults.json holds every scenario's result,
// faults.html draws each one's answers per second with its faults shaded and its table.
// Checked here on one made-up result, without network namespaces.

const result: ScenarioResult = {
  name: 'cut-master',
  faults: [{ label: 'partition g1 <-> r1', startS: 2, healS: 5, endS: 5.2 }],
  sent: 300, admitted: 40, allowed: 35, overAdmitted: 3, overAdmittedBy: { rate: 3 }, wronglyRefused: 0,
  storeAdmitted: 30, fallbackAdmitted: 10, fallbackBy: [{ process: 'g1 pid 42', admitted: 10, firstS: 2.1, lastS: 4.9 }], storeCounted: 29, unlogged: 0, statuses: { 200: 40, 429: 258, '503 unavailable': 2 },
  timeline: [{ t: 0, admitted: 10, refused: 50, errors: 0 }, { t: 1, admitted: 5, refused: 55, errors: 2 }],
  detectMs: 480, recoverMs: 210, unavailable: { unseen: 2, seen: 0 },
  slowest: { clientMs: 900, sentMs: 2100, status: 200, gatewayMs: 120, answeredBy: 'g1 pid 42' },
  extra: { allOnNewMasterAfterHealMs: 2500 }, samples: 300,
};

test('the report: faults.json has every result, faults.html a chart with each fault shaded and the table', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-faults-report-'));
  try {
    writeReport(dir, [result]);
    const json = JSON.parse(readFileSync(join(dir, 'faults.json'), 'utf8')) as { version: number; scenarios: ScenarioResult[] };
    assert.equal(json.version, 1);
    assert.deepEqual(json.scenarios, [result]);
    const html = readFileSync(join(dir, 'faults.html'), 'utf8');
    assert.match(html, /<svg[^>]*>/, 'a chart');
    assert.match(html, /partition g1 &lt;-&gt; r1/, 'the fault labels its shaded span');
    assert.match(html, /data-over="3" data-lost="1"/, 'over-admission and the store\'s loss on the table');
    assert.match(html, /503 unavailable: key not yet looked up by that process \/ looked up \(a bug\)<\/td><td class="small">2 \/ 0/);
    const table = reportTable([result]);
    assert.match(table, /^### cut-master/);
    assert.match(table, /\| lost \(store admitted − counted\) \| 1 \|/);
    assert.match(table, /\| slowest answer: client \/ gateway \| 900 \/ 120 ms \(200, sent at 2100 ms, g1 pid 42\) \|/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
