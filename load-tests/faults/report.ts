import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fmtMs } from '../../gateway/loadtest/report-html.js';
import { esc, lineChart } from '../../gateway/loadtest/svg.js';
import type { ScenarioResult } from './scenario.js';

// The fault harness's report: a table per scenario for the terminal (and docs/faults.md),
// and with --report (SLUICE_FAULTS_REPORT=DIR in tests) faults.json plus faults.html: per
// scenario, the admission rate over time with each fault's span shaded, drawn by the
// load tester's own chart code.

const ms = (v: number): string => (Number.isFinite(v) ? `${fmtMs(v)} ms` : '–');
const statuses = (r: ScenarioResult): string => Object.entries(r.statuses).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ×${v}`).join(', ');
const faults = (r: ScenarioResult): string => r.faults.map((f) => `${f.label} (${(f.endS - f.startS).toFixed(1)} s)`).join('; ');

/** Rows of one scenario: name, value. */
export function rows(r: ScenarioResult, bound?: number): [string, string][] {
  return [
    ['fault (duration)', faults(r) || 'none'],
    ['sent / admitted', `${r.sent} / ${r.admitted}`],
    ['plan allows over the run', String(r.allowed)],
    ...(bound === undefined ? [] : [['over-admission bound', bound.toFixed(1)] as [string, string]]),
    ['over-admitted (oracle)', `${r.overAdmitted}${Object.keys(r.overAdmittedBy).length > 0 ? ` (${Object.entries(r.overAdmittedBy).map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}`],
    ['decided by store / by fallback', `${r.storeAdmitted} / ${r.fallbackAdmitted}`],
    ['store counted', String(r.storeCounted)],
    ['lost (store admitted − counted)', String(r.storeAdmitted - r.storeCounted)],
    ['time to detect (breaker open)', ms(r.detectMs)],
    ['time to recover (breaker closed after heal)', ms(r.recoverMs)],
    ...Object.entries(r.extra).map(([k, v]) => [k, Number.isFinite(v) ? String(Math.round(v)) : '–'] as [string, string]),
    ['503 unavailable: key not yet looked up by that process / looked up (a bug)', `${r.unavailable.unseen} / ${r.unavailable.seen}`],
    ['slowest answer: client / gateway', r.slowest === undefined ? '–' : `${r.slowest.clientMs} / ${Number.isFinite(r.slowest.gatewayMs) ? r.slowest.gatewayMs : '?'} ms (${r.slowest.status}, sent at ${r.slowest.sentMs} ms, ${r.slowest.answeredBy})`],
    ['client answers by status', statuses(r)],
  ];
}

export function reportTable(results: readonly ScenarioResult[]): string {
  return results.map((r) => {
    const lines = rows(r).map(([k, v]) => `| ${k} | ${v} |`);
    return [`### ${r.name}`, '', '| | |', '| --- | --- |', ...lines].join('\n');
  }).join('\n\n');
}

function section(r: ScenarioResult, i: number): string {
  const pts = (f: (p: ScenarioResult['timeline'][number]) => number): (readonly [number, number])[] => r.timeline.map((p) => [p.t, f(p)] as const);
  const chart = lineChart({
    id: `timeline-${i}`, title: `${r.name}: answers per second, faults shaded`, xLabel: 's into the load', yLabel: 'answers/s',
    bands: r.faults.map((f) => ({ from: f.startS, to: f.endS, label: f.label })),
  }, [{ name: 'admitted', points: pts((p) => p.admitted) }, { name: '429', points: pts((p) => p.refused) }, { name: 'errors', points: pts((p) => p.errors) }]);
  const table = rows(r).map(([k, v]) => `<tr><td>${esc(k)}</td><td class="small">${esc(v)}</td></tr>`).join('');
  return `<h2>${esc(r.name)}</h2>${chart}<table id="scenario-${i}" data-over="${r.overAdmitted}" data-lost="${r.storeAdmitted - r.storeCounted}">${table}</table>`;
}

export function renderFaultsHtml(results: readonly ScenarioResult[]): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>sluice faults</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<style>body{font:14px system-ui,sans-serif;margin:24px;max-width:1100px}table{border-collapse:collapse}td{border:1px solid #d1d5db;padding:3px 8px}.small{font-size:12px}</style></head><body>
<h1>sluice fault harness</h1><p>Faults between network-namespace hosts; every answer judged by the loadtest oracle. Bounds: docs/faults.md.</p>
${results.map(section).join('\n')}
</body></html>
`;
}

/** faults.json and faults.html in dir. */
export function writeReport(dir: string, results: readonly ScenarioResult[]): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'faults.json'), `${JSON.stringify({ version: 1, scenarios: results }, null, 2)}\n`);
  writeFileSync(join(dir, 'faults.html'), renderFaultsHtml(results));
}
