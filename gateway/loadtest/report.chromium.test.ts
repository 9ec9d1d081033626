import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { stringify } from 'yaml';
import { sha256, testConfig } from '../../test/harness/config.js';
import { startEchoBackend } from '../../test/harness/echo-backend.js';
import { spawnGateway } from '../../test/harness/gateway.js';
import { fmtMs } from './report-html.js';
import type { LoadtestResult } from './result.js';
import { runLoadtest } from './run.js';
import { parseScenario } from './scenario.js';
import { SUITE_GENERATOR } from './suite-generator.js';

// report.html in a real headless Chromium (Debian's chromium, driven by playwright-core)
// with every request that is not file:// or loopback blocked: it must load with nothing
// from the network, draw its charts, and show the numbers result.json holds. The run
// compares the gateway with the bare backend behind it, so the side-by-side table and
// the ratios are drawn too.

const CHROMIUM = '/usr/bin/chromium';

test('report.html renders offline in Chromium, charts drawn, figures equal to result.json', async (t) => {
  const backend: Server = await startEchoBackend('127.0.0.1', 0);
  const direct = `http://127.0.0.1:${(backend.address() as AddressInfo).port}`;
  const plan = { rate: 20, burst: 10 };
  const gw = await spawnGateway(testConfig({
    upstreams: [direct], plans: { small: plan },
    keys: [{ digest: sha256('report-key-1'), customer: 'r1', plan: 'small' }, { digest: sha256('report-key-2'), customer: 'r2', plan: 'small' }],
    log: { access: false },
  }));
  const dir = mkdtempSync(join(tmpdir(), 'sluice-loadtest-report-'));
  t.after(async () => { await gw.stop(); backend.close(); });
  writeFileSync(join(dir, 'keys.txt'), 'report-key-1\nreport-key-2\n');
  const scenario = parseScenario(stringify({
    name: 'report', target: gw.url, duration_s: 3, arrival: { profile: 'constant', rate: 60 },
    generator: { ...SUITE_GENERATOR, workers: 2 }, // two threads, their histograms merged
    groups: [{ name: 'small', keys: { file: 'keys.txt' }, plan, choice: 'zipf', request: { path: '/v1/ping' } }],
    invalid_keys: { weight: 0.1, count: 3, request: { path: '/v1/ping' } },
  }), dir);
  const out = join(dir, 'out');
  const run = await runLoadtest({ scenario, targets: [{ url: gw.url, admin: undefined }, { url: direct, admin: undefined }], outDir: out, progress: null, asserts: ['p99<5s'] });
  const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as LoadtestResult;
  assert.deepEqual(result.targets.map((x) => x.sent), run.targets.map((x) => x.sent));
  // The bare backend enforces nothing: the oracle sees its over-admission, the gateway's none.
  assert.equal(result.targets[0]!.overAdmitted, 0);
  assert.ok(result.targets[1]!.overAdmitted > 0);

  const profile = mkdtempSync(join(tmpdir(), 'sluice-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  t.after(async () => { await context.close(); rmSync(profile, { recursive: true, force: true }); });
  const blocked: string[] = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith('file://') || /^https?:\/\/127\.0\.0\.1[:/]/.test(url)) return route.continue();
    blocked.push(url);
    return route.abort();
  });
  const page = await context.newPage();
  const requested: string[] = [];
  page.on('request', (req) => requested.push(req.url()));
  await page.goto(pathToFileURL(join(out, 'report.html')).href, { waitUntil: 'load' });

  assert.deepEqual(blocked, [], 'the report asked for something off this machine');
  assert.deepEqual(requested.filter((u) => !u.startsWith('file://')), [], 'the report loads nothing but itself');
  // Every chart is there and has something drawn in it.
  const charts = await page.$$eval('svg.chart', (els) => els.map((e) => ({
    id: e.id,
    paths: [...e.querySelectorAll('path.series')].map((p) => Number(p.getAttribute('data-points'))),
    bars: e.querySelectorAll('rect.bar').length,
    width: e.getBoundingClientRect().width,
  })));
  const ids = charts.map((c) => c.id);
  for (const id of ['spectrum', 'latency-0', 'throughput-0', 'plans-0', 'latency-1', 'throughput-1']) assert.ok(ids.includes(id), `chart ${id} missing: ${ids.join(', ')}`);
  for (const c of charts) {
    assert.ok(c.width > 300, `${c.id} is laid out`);
    assert.ok(c.paths.some((n) => n >= 2) || c.bars > 0, `${c.id} draws nothing: ${JSON.stringify(c)}`);
  }
  // The figures on the page are result.json's.
  const figure = async (k: string): Promise<{ v: string; text: string }> => page.$eval(`[data-k="${k}"]`, (e) => ({ v: e.getAttribute('data-v')!, text: e.textContent! }));
  for (const [i, tr] of result.targets.entries()) {
    const p99 = await figure(`t${i}.p99`);
    assert.equal(Number(p99.v), tr.latency.p99);
    assert.ok(p99.text.startsWith(fmtMs(tr.latency.p99)), `${p99.text} shows ${fmtMs(tr.latency.p99)}`);
    assert.equal(Number((await figure(`t${i}.sent`)).v), tr.sent);
    assert.equal(Number((await figure(`t${i}.overAdmitted`)).v), tr.overAdmitted);
    assert.equal((await figure(`t${i}.overAdmitted`)).text, String(tr.overAdmitted));
    assert.equal(Number((await figure(`t${i}.g0.admitted`)).v), tr.groups[0]!.admitted);
    assert.equal(Number((await figure(`t${i}.g0.allowed`)).v), tr.groups[0]!.allowed);
  }
  assert.match((await figure('t1.p99')).text, /×\d+\.\d\d/, 'the compared target shows its ratio to the first');
  assert.equal((await figure('gate0.passed')).v, String(result.gates[0]!.passed));
  assert.equal(Number((await figure('exitCode')).v), result.exitCode);
  assert.equal(Number((await figure('gen.sent')).v), result.generator.sent);

  const shot = join(out, 'report.png');
  await page.screenshot({ path: shot, fullPage: true });
  assert.ok(statSync(shot).size > 20_000, 'the screenshot shows a drawn page');
  t.diagnostic(`screenshot: ${shot}`);
});
