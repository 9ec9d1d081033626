import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { request } from 'undici';
import { parse } from 'yaml';
import { parseBackendConfig } from '../backends/service/config.js';
import { createBackend } from '../backends/service/wire.js';
import { sha256, testConfig } from '../test/harness/config.js';
import { spawnGateway, type GatewayProcess } from '../test/harness/gateway.js';
import { pollUntil } from '../test/harness/poll.js';
import { newMasterKey } from '../test/harness/webhooks.js';
import { freePort } from '../test/harness/ports.js';
import { startRedis, type RedisProcess } from '../test/harness/redis.js';
import { WebhookMetrics } from '../backends/webhooks/metrics.js';
import { exposition, references } from './promql-selectors.js';

const GRAFANA = fileURLToPath(new URL('../../deploy/grafana/', import.meta.url));
const RULES = fileURLToPath(new URL('../../deploy/prometheus/sluice-rules.yml', import.meta.url));
/** What sluice-webhooks exports (its own process, on its own admin listener): read from its registry. */
async function webhookSeries(): Promise<Map<string, Set<string>>> {
  const m = new WebhookMetrics(async () => ({ waiting: 0, delayed: 0, active: 0, deadLettered: 0, disabledEndpoints: 0 }));
  m.attempts.inc({ result: 'ok' });
  m.deadLettered.inc({ reason: 'attempts' });
  m.latency.observe(0.1);
  m.attemptDuration.observe(0.1);
  m.attemptsPerDelivery.observe(1);
  return exposition(await m.registry.metrics());
}
const PHOTO = fileURLToPath(new URL('../../node_modules/@vladmandic/face-api/demo/sample1.jpg', import.meta.url));
const KEY = 'dash-key';
const NEAR_KEY = 'dash-near-key';
// Used once, while Redis is stopped: a subject with no token lease yet, so its request
// must ask the store.
const STALL_KEY = 'dash-stall-key';
// Added by Prometheus to every series it scrapes, so never in /metrics itself.
const TARGET_LABELS = ['job', 'instance'];

interface Panel { title: string; type: string; panels?: Panel[]; targets?: { expr: string; legendFormat?: string }[] }
interface Dashboard { title: string; uid: string; panels: Panel[]; templating?: { list: { name: string; type: string; query?: string | { query: string } }[] } }

function dashboards(): { file: string; d: Dashboard }[] {
  return readdirSync(GRAFANA).filter((f) => f.endsWith('.json')).sort().map((file) => ({ file, d: JSON.parse(readFileSync(`${GRAFANA}${file}`, 'utf8')) as Dashboard }));
}

/** Every PromQL expression in a dashboard, with where it is, and label_values() queries as selectors. */
function expressions(d: Dashboard): { where: string; expr: string; legend: string }[] {
  const out: { where: string; expr: string; legend: string }[] = [];
  const walk = (ps: readonly Panel[]): void => {
    for (const p of ps) {
      for (const t of p.targets ?? []) out.push({ where: `${d.title} / ${p.title}`, expr: t.expr, legend: t.legendFormat ?? '' });
      walk(p.panels ?? []);
    }
  };
  walk(d.panels);
  for (const v of d.templating?.list ?? []) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : v.query?.query ?? '';
    const m = /^label_values\((.+),\s*(\w+)\)$/.exec(q);
    assert.ok(m !== null, `${d.title}: variable ${v.name}: expected label_values(SELECTOR, LABEL), got ${q}`);
    out.push({ where: `${d.title} / variable ${v.name}`, expr: m[1]!, legend: `{{${m[2]}}}` });
  }
  return out;
}

/** What is wrong with one expression against the series two processes export. */
function check(series: Map<string, Set<string>>, e: { where: string; expr: string; legend: string }): string[] {
  const refs = references(e.expr.replaceAll('$__rate_interval', '5m').replaceAll('$__range', '1h').replaceAll('$__interval', '1m'));
  const problems: string[] = [];
  if (refs.selectors.length === 0) problems.push(`${e.where}: no metric in ${e.expr}`);
  const inExpr = new Set<string>(TARGET_LABELS);
  for (const s of refs.selectors) {
    const labels = series.get(s.metric);
    if (labels === undefined) { problems.push(`${e.where}: ${s.metric} is not exported`); continue; }
    for (const l of labels) inExpr.add(l);
    for (const l of s.labels) if (!labels.has(l) && !TARGET_LABELS.includes(l)) problems.push(`${e.where}: ${s.metric} has no label ${l}`);
  }
  const legend = [...e.legend.matchAll(/\{\{\s*(\w+)\s*\}\}/g)].map((m) => m[1]!);
  for (const l of new Set([...refs.groupingLabels, ...legend])) if (!inExpr.has(l)) problems.push(`${e.where}: label ${l} is on none of the metrics in ${e.expr}`);
  return problems;
}

async function text(url: string): Promise<string> {
  const r = await request(url);
  assert.equal(r.statusCode, 200, url);
  return r.body.text();
}

describe('Grafana dashboards name only series Sluice exports', () => {
  let redis: RedisProcess;
  let gw: GatewayProcess;
  let backend: Awaited<ReturnType<typeof createBackend>>;
  let hooks: Server;
  let series: Map<string, Set<string>>;

  before(async () => {
    redis = await startRedis();
    hooks = createServer((req, res) => { req.resume(); req.on('end', () => { res.writeHead(204); res.end(); }); });
    hooks.listen(0, '127.0.0.1');
    await once(hooks, 'listening');
    // In-process delivery, signed with the customer's key from the gateways' Redis.
    const cfg = parseBackendConfig(['--port', '0', '--face-workers', '0', '--fetch-allow', '127.0.0.1', '--webhook-max-attempts', '1', '--webhook-keys-redis', redis.url],
      { SLUICE_MASTER_KEY: newMasterKey() });
    backend = await createBackend(cfg, pino({ level: 'silent' }));
    const backendUrl = `http://127.0.0.1:${await backend.listen(0, '127.0.0.1')}`;
    const config = testConfig({
      upstreams: [backendUrl],
      // A late reply must come back to be counted: Redis drops a call past timeout +
      // late_grace_ms (admit.lua's expiry), and a busy host can take that long to SIGCONT it.
      store: { kind: 'redis', url: redis.url, timeout_ms: 50, late_grace_ms: 10_000 },
      plans: { test: { rate: 1000, burst: 1000, priority: 10 }, near: { rate: 0.1, burst: 5, priority: 0 } },
      keys: [{ digest: sha256(KEY), customer: 'dash', plan: 'test' }, { digest: sha256(NEAR_KEY), customer: 'near', plan: 'near' },
        { digest: sha256(STALL_KEY), customer: 'stall', plan: 'test' }],
      routes: [{ name: 'dead', prefix: '/dead', upstream: 'dead' }, { name: 'open', prefix: '/open', upstream: 'main', public: true }, { name: 'images', prefix: '/', upstream: 'main' }],
    });
    // Nothing listens on these: connect errors, retries, an ejection, an unhealthy target.
    (config.upstreams as Record<string, unknown>).dead = { targets: [`http://127.0.0.1:${await freePort()}`, `http://127.0.0.1:${await freePort()}`] };
    // One request in flight is the threshold: a public route's request is shed (tier 1),
    // the plans' (tiers from r >= 1.5) are not, as the requests here go one at a time.
    config.shed = { max_inflight: 1 };
    // Two workers: the primary's own series (workers, restarts) exist only then.
    gw = await spawnGateway(config, {}, ['--workers', '2']);

    const photo = readFileSync(PHOTO);
    const send = async (path: string, key: string | undefined, body?: Buffer, options?: object): Promise<number> => {
      const headers: Record<string, string> = {};
      if (key !== undefined) headers['x-api-key'] = key;
      if (options !== undefined) headers['x-options'] = JSON.stringify(options);
      // Each request on a connection of its own (reset: closed after it): two CI runs saw
      // the second upload on a reused connection fail with "other side closed".
      try {
        const r = await request(`${gw.url}${path}`, { method: body === undefined ? 'GET' : 'POST', headers, body, reset: true });
        await r.body.dump();
        return r.statusCode;
      } catch (err) {
        // A failure here says what the gateway was doing (a worker's crash shows on its stderr).
        throw new Error(`${path}: ${(err as Error).message}; gateway stderr: ${gw.stderr.slice(-20).join('\n')}; `
          + `last log lines: ${JSON.stringify(gw.lines.slice(-8))}`, { cause: err });
      }
    };
    assert.equal(await send('/v1/images', KEY, photo, { resize: { width: 64 }, format: 'webp' }), 200);
    assert.equal(await send('/v1/images', KEY, photo, { resize: { width: 32 }, webhook: `http://127.0.0.1:${(hooks.address() as AddressInfo).port}/hook` }), 202);
    assert.equal(await send('/v1/images', undefined, photo), 401);
    assert.equal(await send('/open', undefined), 503);
    const near: number[] = [];
    for (let i = 0; i < 8; i++) near.push(await send('/v1/nothing', NEAR_KEY));
    assert.ok(near.includes(429), `no 429 from the near plan: ${near.join(' ')}`);
    for (let i = 0; i < 12; i++) await send('/dead/x', KEY);
    // A store call that answers after the deadline: fallback, timeout error, late reply.
    redis.signal('SIGSTOP');
    try {
      await send('/v1/nothing', STALL_KEY);
    } finally {
      redis.signal('SIGCONT');
    }
    const delivered = await pollUntil(async () => (/sluice_backend_webhooks_total\{/.test(await text(`${backendUrl}/metrics`)) ? true : undefined), 30_000, 100);
    assert.equal(delivered.value, true, 'the webhook was never delivered');
    const late = await pollUntil(async () => (/sluice_store_late_replies_total\{/.test(await text(`${gw.adminUrl}/metrics`)) ? true : undefined), 15_000, 100);
    assert.equal(late.value, true, 'no late store reply counted');
    series = new Map([...exposition(await text(`${gw.adminUrl}/metrics`)), ...exposition(await text(`${backendUrl}/metrics`))]);
  });

  after(async () => {
    await gw?.stop();
    await backend?.close();
    hooks?.close();
    await redis?.stop();
  });

  it('ships a gateway and a backend dashboard, each with panels', () => {
    const ds = dashboards();
    assert.deepEqual(ds.map((x) => x.file), ['sluice-backends.json', 'sluice-gateway.json']);
    for (const { d } of ds) assert.ok(expressions(d).length >= 10, `${d.title}: only ${expressions(d).length} queries`);
  });

  it('every metric and label in every query is in the /metrics of a running gateway and backend', () => {
    const problems = dashboards().flatMap(({ d }) => expressions(d).flatMap((e) => check(series, e)));
    assert.deepEqual(problems, [], `exported: ${[...series.keys()].filter((k) => k.startsWith('sluice_')).join(' ')}`);
  });

  it('the alerting rules name only exported series too (gateway, backend, sluice-webhooks)', async () => {
    const rules = (parse(readFileSync(RULES, 'utf8')) as { groups: { rules: { alert?: string; record?: string; expr: string }[] }[] }).groups.flatMap((g) => g.rules);
    const recorded = new Set(rules.flatMap((r) => (r.record === undefined ? [] : [r.record])));
    const known = new Map([...series, ...await webhookSeries()]);
    // A recording rule's series carries the labels it groups by.
    for (const r of rules) if (r.record !== undefined) known.set(r.record, new Set(references(r.expr).groupingLabels.filter((l) => l !== 'le')));
    const problems = rules.flatMap((r) => check(known, { where: r.alert ?? r.record!, expr: r.expr, legend: '' }));
    assert.deepEqual(problems, []);
    assert.ok(recorded.size >= 3);
  });

  it('the checker itself refuses a metric or label that does not exist, and a bare histogram name', () => {
    const e = (expr: string): string[] => check(series, { where: 'probe', expr, legend: '' });
    assert.equal(e('sum by (route) (rate(sluice_requests_total[5m]))').length, 0);
    assert.equal(e('rate(sluice_request_duration_seconds_count[5m])').length, 0);
    assert.equal(e('rate(sluice_request_duration_seconds[5m])').length, 1);
    assert.equal(e('sum by (flavour) (rate(sluice_requests_total[5m]))').length, 1);
    assert.equal(e('sluice_requests_total{flavour="x"}').length, 1);
    assert.equal(e('sluice_nonexistent_total').length, 1);
  });

  it('the provisioning file points Grafana at the folder the dashboards are copied to', () => {
    const p = parse(readFileSync(`${GRAFANA}provisioning/dashboards/sluice.yaml`, 'utf8')) as { apiVersion: number; providers: { type: string; options: { path: string } }[] };
    assert.equal(p.apiVersion, 1);
    assert.equal(p.providers[0]!.type, 'file');
    assert.equal(p.providers[0]!.options.path, '/var/lib/grafana/dashboards/sluice');
    for (const { d } of dashboards()) assert.match(d.uid, /^sluice-/);
  });
});
