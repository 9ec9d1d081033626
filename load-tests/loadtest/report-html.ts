import type { LoadtestResult, TargetResult } from './result.js';
import { barChart, esc, lineChart, type Series } from './svg.js';

// report.html: one file, no scripts, no network; every chart is inline SVG and every
// figure a test can check carries data-k (what it is) and data-v (the raw number from
// result.json).

export function fmtMs(v: number): string {
  return v < 10 ? v.toFixed(2) : v < 1000 ? v.toFixed(1) : v.toFixed(0);
}

function cell(k: string, v: number, text: string): string {
  return `<td data-k="${esc(k)}" data-v="${v}">${esc(text)}</td>`;
}

function pct(v: number): string { return `${(v * 100).toFixed(3)}%`; }

function ratio(a: number, b: number): string { return b === 0 ? '–' : `×${(a / b).toFixed(2)}`; }

function targetRows(r: LoadtestResult): string {
  const head = '<tr><th>target</th><th>sent</th><th>answered/s</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th><th>p99 uncorrected</th><th>errors</th><th>429</th><th>over-admitted</th><th>wrongly refused</th><th>header issues</th></tr>';
  const base = r.targets[0]!;
  const rows = r.targets.map((t, i) => {
    const k = `t${i}`;
    const vs = (a: number, b: number): string => (i === 0 ? '' : ` (${ratio(a, b)})`);
    return `<tr><td>${esc(t.url)}</td>${cell(`${k}.sent`, t.sent, String(t.sent))}${cell(`${k}.answeredPerS`, t.answeredPerS, t.answeredPerS.toFixed(1))}`
      + `${cell(`${k}.p50`, t.latency.p50, fmtMs(t.latency.p50) + vs(t.latency.p50, base.latency.p50))}`
      + `${cell(`${k}.p90`, t.latency.p90, fmtMs(t.latency.p90))}`
      + `${cell(`${k}.p99`, t.latency.p99, fmtMs(t.latency.p99) + vs(t.latency.p99, base.latency.p99))}`
      + `${cell(`${k}.p999`, t.latency.p999, fmtMs(t.latency.p999))}${cell(`${k}.max`, t.latency.max, fmtMs(t.latency.max))}`
      + `${cell(`${k}.p99u`, t.latencyUncorrected.p99, fmtMs(t.latencyUncorrected.p99))}`
      + `${cell(`${k}.errorRate`, t.errorRate, pct(t.errorRate))}${cell(`${k}.s429`, t.status.s429, String(t.status.s429))}`
      + `${cell(`${k}.overAdmitted`, t.overAdmitted, String(t.overAdmitted))}${cell(`${k}.wronglyRefused`, t.wronglyRefused, String(t.wronglyRefused))}`
      + `${cell(`${k}.headerIssues`, t.headerIssues, String(t.headerIssues))}</tr>`;
  });
  return `<table id="targets">${head}${rows.join('')}</table>`;
}

function gatesTable(r: LoadtestResult): string {
  const rows = r.gates.map((g, i) => `<tr class="${g.passed ? 'pass' : 'fail'}"><td>${esc(g.expr)}</td><td data-k="gate${i}.passed" data-v="${g.passed}">${g.passed ? 'passed' : 'FAILED'}</td><td>${esc(g.detail)}</td></tr>`);
  const invalid = r.valid ? '' : `<tr class="fail"><td>valid run</td><td data-k="valid" data-v="false">INVALID</td><td>${esc(r.invalidReasons.join('; '))}</td></tr>`;
  const reg = (r.regression?.verdicts ?? []).map((v) => `<tr class="${v.verdict === 'regression' ? 'fail' : 'pass'}"><td>vs baseline: ${esc(v.metric)}</td><td>${v.verdict}</td><td>${esc(`${v.baseline.toFixed(3)} → ${v.now.toFixed(3)} (${v.change}; noise floor ${v.floor})`)}</td></tr>`);
  return `<table id="gates"><tr><th>gate</th><th>verdict</th><th>measured</th></tr>${invalid}${rows.join('')}${reg.join('')}</table>`;
}

function latencyOverTime(t: TargetResult, i: number): string {
  const pick = (f: (p: TargetResult['timeline'][number]) => number): Series['points'] => t.timeline.filter((p) => p.sent > 0 || p.p99 > 0).map((p) => [p.t, f(p)] as const);
  return lineChart({ id: `latency-${i}`, title: `Latency over time (from the intended send), ${t.url}`, xLabel: 's into the run', yLabel: 'ms' },
    [{ name: 'p50', points: pick((p) => p.p50) }, { name: 'p90', points: pick((p) => p.p90) }, { name: 'p99', points: pick((p) => p.p99) }, { name: 'max', points: pick((p) => p.max) }]);
}

function spectrum(r: LoadtestResult): string {
  // x = log10(1 / (1 - p)): 0 at 0%, 1 at 90%, 2 at 99%, ... the HdrHistogram plot's axis.
  const x = (p: number): number => (p >= 100 ? Math.log10(1 / (1 - 0.999999)) : Math.log10(1 / (1 - p / 100)));
  const series: Series[] = r.targets.flatMap((t, i) => {
    const label = r.targets.length > 1 ? ` ${i}` : '';
    return [
      { name: `corrected${label}`, points: t.spectrum.map((s) => [x(s.percentile), s.ms] as const) },
      { name: `uncorrected${label}`, points: t.spectrum.map((s) => [x(s.percentile), s.uncorrectedMs] as const) },
    ];
  });
  const ticks = [0, 90, 99, 99.9, 99.99, 99.999].map((p) => ({ at: x(p), label: `${p}%` }));
  return lineChart({ id: 'spectrum', title: 'HDR percentile spectrum', xLabel: 'percentile', yLabel: 'ms', xTicks: ticks }, series);
}

function throughput(t: TargetResult, i: number): string {
  const pts = (f: (p: TargetResult['timeline'][number]) => number): Series['points'] => t.timeline.map((p) => [p.t, f(p)] as const);
  return lineChart({ id: `throughput-${i}`, title: `Requests/s: sent vs answers, ${t.url}`, xLabel: 's into the run', yLabel: 'requests/s' }, [
    { name: 'sent', points: pts((p) => p.sent) }, { name: '2xx', points: pts((p) => p.s2xx) }, { name: '429', points: pts((p) => p.s429) },
    { name: '5xx', points: pts((p) => p.s5xx) }, { name: 'no answer', points: pts((p) => p.errors) }, { name: 'other 4xx', points: pts((p) => p.s4xx) },
  ]);
}

function plans(t: TargetResult, i: number): string {
  const gs = t.groups.filter((g) => g.kind !== 'invalid');
  const chart = barChart({ id: `plans-${i}`, title: 'Per group: sent, admitted, and the most the plan allows (in units)', yLabel: 'requests; units admitted and allowed', categories: gs.map((g) => g.group) }, [
    { name: 'sent', values: gs.map((g) => g.sent) }, { name: 'admitted units', values: gs.map((g) => g.units) },
    { name: 'allowed', values: gs.map((g) => g.allowed) }, { name: 'over-admitted', values: gs.map((g) => g.overAdmitted) },
  ]);
  const rows = t.groups.map((g, gi) => {
    const k = `t${i}.g${gi}`;
    const plan = g.plan === null ? '401 expected' : `${g.plan.rate}/s burst ${g.plan.burst}${g.plan.quotaDay ? `, ${g.plan.quotaDay}/day` : ''}${g.plan.quotaMonth ? `, ${g.plan.quotaMonth}/month` : ''}${g.plan.maxInflight ? `, ${g.plan.maxInflight} in flight` : ''}`;
    const worst = g.worstKeys.filter((w) => w.sent > 0).slice(0, 5).map((w) => `key ${w.key}: ${w.admitted}/${w.allowed} admitted/allowed${w.overAdmitted ? `, ${w.overAdmitted} over` : ''}${w.wronglyRefused ? `, ${w.wronglyRefused} wrongly refused` : ''}`).join('<br>');
    const by = Object.entries(g.overAdmittedBy).map(([r, n]) => `${r} ${n}`).join(', ');
    return `<tr><td>${esc(g.group)} (${g.kind})</td><td>${esc(plan)}</td>${cell(`${k}.sent`, g.sent, String(g.sent))}${cell(`${k}.admitted`, g.admitted, String(g.admitted))}`
      + `${cell(`${k}.units`, g.units, String(g.units))}`
      + `${cell(`${k}.allowed`, g.allowed, g.plan === null ? '–' : String(g.allowed))}${cell(`${k}.refused`, g.refused, String(g.refused))}`
      + `${cell(`${k}.overAdmitted`, g.overAdmitted, `${g.overAdmitted}${by ? ` (${by})` : ''}`)}${cell(`${k}.wronglyRefused`, g.wronglyRefused, String(g.wronglyRefused))}`
      + `${cell(`${k}.p99`, g.latency.p99, fmtMs(g.latency.p99))}<td class="small">${worst}</td></tr>`;
  });
  return `${chart}<table id="groups-${i}"><tr><th>group</th><th>expected plan</th><th>sent</th><th>admitted</th><th>units</th><th>allowed (units)</th><th>429</th><th>over-admitted</th><th>wrongly refused</th><th>p99 ms</th><th>worst keys</th></tr>${rows.join('')}</table>`;
}

function backends(t: TargetResult, i: number): string {
  const names = Object.keys(t.backends).sort();
  if (names.length === 0) return '';
  const total = names.reduce((a, n) => a + t.backends[n]!, 0);
  return barChart({ id: `backends-${i}`, title: `Per-backend share, ${t.url}`, yLabel: '% of answers', categories: names }, [
    { name: 'share %', values: names.map((n) => Math.round((1000 * t.backends[n]!) / total) / 10) },
  ]);
}

function generator(r: LoadtestResult): string {
  const g = r.generator;
  const l = g.limits;
  return `<table id="generator"><tr><th>workers</th><th>sends</th><th>late (&gt; ${l.lateMs} ms)</th><th>lateness p50 / p99 / max ms</th><th>event-loop delay p99 / max ms</th><th>generator CPU</th><th>limits</th></tr>`
    + `<tr><td>${g.workers}</td>${cell('gen.sent', g.sent, String(g.sent))}${cell('gen.lateFraction', g.lateFraction, `${g.late} (${(g.lateFraction * 100).toFixed(2)}%)`)}`
    + `${cell('gen.lateP99', g.lateness.p99, `${fmtMs(g.lateness.p50)} / ${fmtMs(g.lateness.p99)} / ${fmtMs(g.lateness.max)}`)}`
    + `${cell('gen.loopLagP99', g.loopLagP99Ms, `${fmtMs(g.loopLagP99Ms)} / ${fmtMs(g.loopLagMaxMs)}`)}${cell('gen.cores', g.cores, `${(g.cores * 100).toFixed(0)}% of a core`)}`
    + `<td class="small">invalid above ${(l.maxLateFraction * 100).toFixed(1)}% late sends or ${l.maxLoopLagMs} ms loop delay p99</td></tr></table>`;
}

function cost(r: LoadtestResult): string {
  const c = r.cost;
  if (c === null) return '<p>No cost figures: run with <code>--redis URL</code> (and a local gateway) to measure them.</p>';
  const parts: string[] = [];
  if (c.redis !== undefined) {
    const probes = c.redis.probes;
    parts.push(barChart({ id: 'redis-cost', title: 'Redis commands per request', yLabel: 'commands', categories: ['whole run', ...probes.map((p) => p.class)] }, [
      { name: 'commands/request', values: [c.redis.commandsPerRequest, ...probes.map((p) => p.commandsPerRequest)] },
    ]));
    const rows = probes.map((p, i) => `<tr><td>${p.class}</td>${cell(`probe${i}.cpr`, p.commandsPerRequest, p.commandsPerRequest.toFixed(2))}<td>${p.ofClass}/${p.requests}</td><td>${esc(Object.entries(p.byCommand).map(([k, v]) => `${k} ${v}`).join(', '))}</td></tr>`);
    parts.push(`<p>Counted as INFO commandstats counts them: the commands a Lua script runs inside Redis count each, so one EVALSHA round trip shows as several.</p><table id="redis"><tr><th>requests</th><th>commands/request</th><th>answers of the class</th><th>commands</th></tr>`
      + `<tr><td>whole run</td>${cell('redis.cpr', c.redis.commandsPerRequest, c.redis.commandsPerRequest.toFixed(2))}<td>–</td><td>${esc(Object.entries(c.redis.byCommand).map(([k, v]) => `${k} ${v}`).join(', '))}</td></tr>${rows.join('')}</table>`
      + `<p>Redis CPU: <span data-k="redis.cpu" data-v="${c.redis.cpuUsPerRequest}">${c.redis.cpuUsPerRequest.toFixed(1)}</span> µs per request.</p>`);
  }
  if (c.gateway !== undefined) parts.push(`<p>Gateway CPU (pid ${c.gateway.pids.join(', ')}): <span data-k="gateway.cpu" data-v="${c.gateway.cpuUsPerRequest}">${c.gateway.cpuUsPerRequest.toFixed(1)}</span> µs per request.</p>`);
  return parts.join('');
}

function issues(t: TargetResult): string {
  if (t.headerIssueExamples.length === 0 && t.errorExamples.length === 0) return '';
  return `<ul class="small">${t.headerIssueExamples.map((h) => `<li>${esc(`${h.group} key ${h.key} at ${(h.at / 1000).toFixed(3)} s: ${h.problem}`)}</li>`).join('')}${t.errorExamples.map((e) => `<li>${esc(e)}</li>`).join('')}</ul>`;
}

function inflightNote(r: LoadtestResult, t: TargetResult, i: number): string {
  const verdict = t.inflightJudged ? 'judged' : 'NOT judged: the gateway decided later than the window, so in-flight over-admissions are left out';
  return `<p class="small">Refusals came back in <span data-k="t${i}.refusalP99" data-v="${t.refusalP99Ms}">${fmtMs(t.refusalP99Ms)}</span> ms (p99) against a decision window of ${r.oracle.decisionWindowMs} ms: in-flight limits ${verdict}.</p>`;
}

const CSS = `body{font:14px system-ui,sans-serif;margin:24px;color:#111827;max-width:1100px}h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #d1d5db;padding:3px 8px;text-align:right;vertical-align:top}td:first-child,th:first-child{text-align:left}
tr.fail td{background:#fee2e2}tr.pass td:nth-child(2){color:#166534}.small{font-size:12px;text-align:left}.chart{display:block;margin:8px 0}
.verdict{font-weight:600;padding:2px 8px;border-radius:4px}.ok{background:#dcfce7}.bad{background:#fee2e2}`;

export function renderHtml(r: LoadtestResult): string {
  const verdict = r.exitCode === 0 ? '<span class="verdict ok">PASSED</span>' : r.exitCode === 3 ? '<span class="verdict bad">INVALID RUN</span>' : '<span class="verdict bad">FAILED</span>';
  const perTarget = r.targets.map((t, i) => `<h2>${esc(t.url)}</h2>${inflightNote(r, t, i)}${latencyOverTime(t, i)}${throughput(t, i)}${plans(t, i)}${backends(t, i)}${issues(t)}`).join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>sluice loadtest: ${esc(r.scenario)}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<style>${CSS}</style></head><body>
<h1>sluice loadtest: ${esc(r.scenario)} ${verdict}</h1>
<p>Started ${esc(r.startedAt)}, ${r.durationS} s, exit code <span data-k="exitCode" data-v="${r.exitCode}">${r.exitCode}</span>. Latency is measured from each request's intended send time (no coordinated omission); "uncorrected" from when it actually left.
Oracle tolerance ${r.oracle.toleranceMs} ms around every send and answer; in-flight limits are judged taking each decision to fall within ${r.oracle.decisionWindowMs} ms of the send.</p>
<h2>Gates</h2>${gatesTable(r)}
<h2>Targets</h2>${targetRows(r)}
${spectrum(r)}
<h2>Generator</h2>${generator(r)}
<h2>Cost</h2>${cost(r)}
${perTarget}
</body></html>
`;
}
