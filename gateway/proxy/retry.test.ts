import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Pool } from 'undici';
import { parseConfig } from '../config/load.js';
import type { RetryConfig } from '../config/types.js';
import { metricValue } from '../../test/harness/metrics.js';
import { Metrics } from '../observe/metrics.js';
import { Upstream } from '../upstream/pool-set.js';
import { Target, type OutcomeSink } from '../upstream/target.js';
import { mapUpstreamError } from './upstream-errors.js';
import { Retrier, RetryBudget, retryAllowed, statusReason } from './retry.js';

// The retry rules on an injected clock, without a process: which failures may be retried
// for which requests, the budget's rolling second, and one request's attempts across
// targets. (proxy.retries.test.ts shows them against real sockets: a body delivered
// exactly once, a storm of failures held to the budget.)

const budget = (cfg: Partial<RetryConfig> = {}): RetryBudget => new RetryBudget({ attempts: 2, statuses: [502, 503], budget_percent: 20, min_per_second: 3, max_buffered_body_bytes: 0, ...cfg });

describe('retry: which failures may go again', () => {
  it('a refused or unreachable connection sent nothing; a reset one may have; anything else is never retried', () => {
    for (const code of ['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']) assert.equal(mapUpstreamError({ code }).retry, 'connect', code);
    for (const code of ['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE']) assert.equal(mapUpstreamError({ code }).retry, 'reset', code);
    for (const code of ['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'HPE_INVALID_CHUNK_SIZE', undefined]) assert.equal(mapUpstreamError({ code }).retry, undefined, String(code));
    assert.equal(mapUpstreamError(new Error('no code')).retry, undefined);
    assert.deepEqual([502, 503, 500, 504, 429].map((s) => statusReason(s, [502, 503])), ['status_502', 'status_503', undefined, undefined, undefined]);
    assert.deepEqual([502, 504].map((s) => statusReason(s, [504])), [undefined, 'status_504'], 'the upstream\'s own list');
    assert.equal(statusReason(502, []), undefined, '[]: connection failures only');
  });

  it('after a connect failure any method goes again; after a reset or a retried status only idempotent ones; a body that cannot be replayed never', () => {
    for (const m of ['GET', 'POST', 'PATCH']) assert.equal(retryAllowed('connect', m, true), true, m);
    for (const reason of ['reset', 'status_502', 'status_503'] as const) {
      for (const m of ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']) assert.equal(retryAllowed(reason, m, true), true, `${reason} ${m}`);
      for (const m of ['POST', 'PATCH']) assert.equal(retryAllowed(reason, m, true), false, `${reason} ${m}`);
    }
    for (const reason of ['connect', 'reset'] as const) assert.equal(retryAllowed(reason, 'GET', false), false);
  });
});

describe('retry budget (a rolling second, injected clock)', () => {
  it('allows min_per_second retries in a second however few the requests', () => {
    const b = budget();
    b.request(1000);
    assert.deepEqual([b.take(1000), b.take(1100), b.take(1200), b.take(1300)], [true, true, true, false]);
  });

  it('beyond that, budget_percent of the second\'s requests', () => {
    const b = budget();
    for (let i = 0; i < 100; i++) b.request(5000 + i);
    const taken = Array.from({ length: 25 }, (_, i) => b.take(5100 + i)).filter(Boolean).length;
    assert.equal(taken, 20, '20% of 100 requests');
  });

  it('the previous second counts for what of it the window still covers', () => {
    const b = budget({ min_per_second: 0 });
    for (let i = 0; i < 100; i++) b.request(10_000 + i);
    assert.equal(Array.from({ length: 20 }, () => b.take(10_500)).filter(Boolean).length, 20);
    // At 11.250 the window still holds 3/4 of second 10: 75 requests, 15 retries, so 0 more.
    assert.equal(b.take(11_250), false);
    // At 11.900, a tenth of it: 10 requests, 2 retries: still none (10 x 20% = 2).
    assert.equal(b.take(11_900), false);
    b.request(11_900); b.request(11_900); b.request(11_900); b.request(11_900); b.request(11_900);
    // 15 requests in the window (10 + 5), 2 retries: 3 allowed, 1 more.
    assert.equal(b.take(11_900), true);
    assert.equal(b.take(11_900), false);
  });

  it('requests of the second before still earn retries, for what of it the window covers', () => {
    const b = budget({ min_per_second: 0 });
    for (let i = 0; i < 100; i++) b.request(30_000 + i);
    // At 31.5 s the window holds half of second 30: 50 requests, so 10 retries, though none came this second.
    const taken = Array.from({ length: 12 }, () => b.take(31_500)).filter(Boolean).length;
    assert.equal(taken, 10);
  });

  it('a quiet second in between forgets everything before it', () => {
    const b = budget({ min_per_second: 0 });
    for (let i = 0; i < 100; i++) b.request(20_000);
    for (let i = 0; i < 20; i++) b.take(20_000);
    assert.equal(b.take(22_100), false, 'no requests in the window: 0% of 0');
    for (let i = 0; i < 10; i++) b.request(22_100);
    assert.deepEqual([b.take(22_100), b.take(22_100), b.take(22_100)], [true, true, false]);
  });
});

// Three targets, in turn; pools are never used, so none is opened.
const cfg = parseConfig(`
plans: { p: {} }
upstreams:
  u:
    targets: ["http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"]
    balancer: round_robin
    retry: { attempts: 2, budget_percent: 20, min_per_second: 1 }
routes: [{ prefix: /, upstream: u }]
`, {}).upstreams.get('u')!;
const sink: OutcomeSink = { outcome() {} };
const port = (t: Target | undefined): string => t === undefined ? '-' : new URL(t.origin).port;

describe('one request\'s retries (Retrier, injected clock)', () => {
  const setup = (retry: RetryConfig = cfg.retry): { upstream: Upstream; b: RetryBudget; metrics: Metrics; clock: { now: number } } => {
    const upstream = new Upstream(cfg, cfg.targets.map((t) => new Target(t, cfg, null as unknown as Pool, sink)));
    return { upstream, b: new RetryBudget(retry), metrics: new Metrics(50), clock: { now: 0 } };
  };

  it('goes to a target it has not failed on, at most `attempts` times', () => {
    const { upstream, b, metrics, clock } = setup({ ...cfg.retry, min_per_second: 10 });
    const r = new Retrier(upstream, b, metrics, 'GET', () => clock.now);
    const first = upstream.targets[0]!;
    r.sentTo(first);
    const second = r.next('connect', true)!;
    assert.notEqual(port(second), port(first));
    r.sentTo(second);
    const third = r.next('connect', true)!;
    assert.ok(![port(first), port(second)].includes(port(third)), `${port(third)} is the one not tried yet`);
    r.sentTo(third);
    assert.equal(r.next('connect', true), undefined, 'attempts: 2');
  });

  it('stops when every target has failed, when the rule forbids it, or when the budget is spent (and counts that)', async () => {
    const { upstream, b, metrics, clock } = setup();
    const post = new Retrier(upstream, b, metrics, 'POST', () => clock.now);
    post.sentTo(upstream.targets[0]!);
    assert.equal(post.next('reset', true), undefined, 'a POST that may have arrived');

    // min_per_second 1 and 2 requests so far (20% of 2 < 1): one retry this second.
    const a = new Retrier(upstream, b, metrics, 'GET', () => clock.now);
    a.sentTo(upstream.targets[0]!);
    assert.notEqual(a.next('connect', true), undefined);
    const c = new Retrier(upstream, b, metrics, 'GET', () => clock.now);
    c.sentTo(upstream.targets[0]!);
    assert.equal(c.next('connect', true), undefined, 'the budget is spent');
    const text = await metrics.registry.metrics();
    assert.equal(metricValue(text, 'sluice_upstream_retries_refused_total', { upstream: 'u' }), 1);
    assert.equal(metricValue(text, 'sluice_upstream_retries_total', { upstream: 'u', reason: 'connect' }), 1);

    clock.now = 2000;
    const d = new Retrier(upstream, b, metrics, 'GET', () => clock.now);
    for (const t of upstream.targets) d.sentTo(t);
    assert.equal(d.next('connect', true), undefined, 'no target left that it has not failed on');
  });
});
