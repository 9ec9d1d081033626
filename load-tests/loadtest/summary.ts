import { fmtMs } from './report-html.js';
import type { LoadtestResult } from './result.js';

// The end-of-run table on stdout: per target, per group, the gates and the verdict.

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((v, c) => (c === 0 ? v.padEnd(widths[c]!) : v.padStart(widths[c]!))).join('  ')).join('\n');
}

export function summaryText(r: LoadtestResult): string {
  const out: string[] = [];
  const base = r.targets[0]!;
  out.push(table([
    ['target', 'sent', 'answered/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'p99 uncorr.', 'errors', '429', 'over-adm.', 'wrongly ref.', 'hdr issues'],
    ...r.targets.map((t, i) => [
      t.url, String(t.sent), t.answeredPerS.toFixed(1),
      fmtMs(t.latency.p50) + (i > 0 && base.latency.p50 > 0 ? ` ×${(t.latency.p50 / base.latency.p50).toFixed(2)}` : ''),
      fmtMs(t.latency.p99) + (i > 0 && base.latency.p99 > 0 ? ` ×${(t.latency.p99 / base.latency.p99).toFixed(2)}` : ''),
      fmtMs(t.latency.p999), fmtMs(t.latency.max), fmtMs(t.latencyUncorrected.p99), `${(t.errorRate * 100).toFixed(2)}%`,
      String(t.status.s429), String(t.overAdmitted), String(t.wronglyRefused), String(t.headerIssues),
    ]),
  ]));
  for (const t of r.targets) {
    out.push('', `groups on ${t.url}:${t.inflightJudged ? '' : ` (in-flight limits not judged: refusals took ${fmtMs(t.refusalP99Ms)} ms p99, over the ${r.oracle.decisionWindowMs} ms decision window)`}`);
    out.push(table([
      ['group', 'kind', 'sent', 'admitted', 'units', 'allowed', '429', '401', 'over-adm.', 'wrongly ref.', 'p99 ms'],
      ...t.groups.map((g) => [g.group, g.kind, String(g.sent), String(g.admitted), String(g.units), g.plan === null ? '-' : String(g.allowed), String(g.refused),
        String(g.unauthorized), String(g.overAdmitted), String(g.wronglyRefused), fmtMs(g.latency.p99)]),
    ]));
  }
  const g = r.generator;
  out.push('', `generator: ${g.sent} sends, ${g.late} over ${g.limits.lateMs} ms late (${(g.lateFraction * 100).toFixed(2)}%), lateness p99 ${fmtMs(g.lateness.p99)} ms, `
    + `event-loop delay p99 ${fmtMs(g.loopLagP99Ms)} ms, CPU ${(g.cores * 100).toFixed(0)}% of a core`);
  if (r.cost?.redis !== undefined) {
    out.push(`redis: ${r.cost.redis.commandsPerRequest.toFixed(2)} commands (those inside Lua scripts included) and ${r.cost.redis.cpuUsPerRequest.toFixed(1)} µs CPU per request; `
      + r.cost.redis.probes.map((p) => `${p.class} ${p.commandsPerRequest.toFixed(2)} (${p.ofClass}/${p.requests} of the class)`).join(', '));
  }
  if (r.cost?.gateway !== undefined) out.push(`gateway: ${r.cost.gateway.cpuUsPerRequest.toFixed(1)} µs CPU per request`);
  out.push('', 'gates:');
  for (const gate of r.gates) out.push(`  ${gate.passed ? 'pass' : 'FAIL'}  ${gate.expr}  (${gate.detail})`);
  for (const v of r.regression?.verdicts ?? []) out.push(`  ${v.verdict === 'regression' ? 'FAIL' : 'pass'}  vs baseline ${v.metric}: ${v.baseline.toFixed(3)} -> ${v.now.toFixed(3)} (${v.change}, noise floor ${v.floor}): ${v.verdict}`);
  if (!r.valid) out.push(`  INVALID RUN: ${r.invalidReasons.join('; ')}`);
  out.push('', `exit ${r.exitCode}`);
  return `${out.join('\n')}\n`;
}
