import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Pool } from 'undici';
import { parseConfig } from '../config/load.js';
import { Upstream } from './pool-set.js';
import { Target, type OutcomeSink } from './target.js';
import { LeastOutstanding, PowerOfTwoChoices, RoundRobin, SmoothWeightedRoundRobin } from './balancers.js';

// The balancers' arithmetic, in process: no pool is ever used, so none is opened.
const cfg = parseConfig(`
plans: { p: {} }
upstreams:
  u:
    targets: [{ url: "http://127.0.0.1:1", weight: 5 }, "http://127.0.0.1:2", "http://127.0.0.1:3", { url: "http://127.0.0.1:4", backup: true }]
routes: [{ prefix: /, upstream: u }]
`, {}).upstreams.get('u')!;
const sink: OutcomeSink = { outcome() {} };
const targets = (): Target[] => cfg.targets.map((t) => new Target(t, cfg, null as unknown as Pool, sink));
const port = (t: Target | undefined): string => t === undefined ? '-' : new URL(t.origin).port;

describe('balancers', () => {
  it('smooth weighted round-robin spreads 5:1:1 as nginx does (a a b a c a a)', () => {
    const ts = targets().slice(0, 3);
    const b = new SmoothWeightedRoundRobin();
    assert.equal(Array.from({ length: 7 }, () => port(b.pick(ts))).join(' '), '1 1 2 1 3 1 1');
  });

  it('backups take traffic only while no primary is available', () => {
    const ts = targets();
    const u = new Upstream(cfg, ts);
    for (let i = 0; i < 20; i++) assert.notEqual(port(u.pick(0)), '4');
    ts[0]!.activeUp = false; ts[1]!.ejectedUntil = 1000; ts[2]!.activeUp = false;
    assert.equal(port(u.pick(0)), '4');
    assert.equal(port(u.pick(1000)), '2', 'the ejection is over at 1000');
    ts[3]!.activeUp = false;
    assert.equal(u.pick(0), undefined);
  });

  it('an advertised X-Backend-Load counts (fresh only), and a full backend is priced out', () => {
    const [a, b] = targets();
    a!.observeLatency(10, 0); b!.observeLatency(10, 0);
    const lo = new LeastOutstanding();
    b!.observeLoad('inflight=4; queued=3; capacity=8', 0);
    assert.equal(b!.load(0), 7);
    assert.equal(b!.load(2000), 0, 'a snapshot older than a second is ignored');
    // weight 5 on a: 0/5 vs 7/1
    for (let i = 0; i < 4; i++) assert.equal(port(lo.pick([a!, b!], 10)), '1');
    b!.observeLoad('inflight=2; queued=6; capacity=8', 0);
    a!.outstanding = 50;
    const p2c = new PowerOfTwoChoices();
    for (let i = 0; i < 4; i++) assert.equal(port(p2c.pick([a!, b!], 10)), '1', 'b is saturated');
  });

  it('peak EWMA: a slow sample counts at once, fast ones pull it down gradually', () => {
    const [t] = targets();
    t!.observeLatency(10, 0);
    t!.observeLatency(100, 1);
    assert.ok(Math.abs(t!.latency(1) - 100) < 1e-9);
    t!.observeLatency(10, 2);
    assert.ok(t!.latency(2) > 90, `one fast sample 1 ms later barely moves it: ${t!.latency(2)}`);
    assert.ok(t!.latency(30_000) < 10, 'and it fades with time (τ = ewma_decay_ms, 10 s)');
  });

  it('round-robin: each candidate in turn, weights ignored', () => {
    const ts = targets().slice(0, 3);
    const b = new RoundRobin();
    assert.equal(Array.from({ length: 6 }, () => port(b.pick(ts))).join(' '), '1 2 3 1 2 3');
  });

  it('least outstanding: fewest requests per unit of weight; ties rotate so an idle upstream is not all sent to one', () => {
    const [a, b, c] = targets();
    const lo = new LeastOutstanding();
    a!.outstanding = 9; b!.outstanding = 2; c!.outstanding = 3;
    // a has weight 5: 9/5 = 1.8 beats 2 and 3.
    assert.equal(port(lo.pick([a!, b!, c!], 0)), '1');
    b!.outstanding = 1;
    assert.equal(port(lo.pick([a!, b!, c!], 0)), '2');
    const idle = targets().slice(1, 3);
    assert.equal(Array.from({ length: 4 }, () => port(lo.pick(idle, 0))).join(' '), '3 2 3 2');
  });

  /** Random draws in order: p2c's two candidates are the first two. */
  const draws = (...xs: number[]): () => number => () => xs.shift()!;

  it('p2c: of the two it draws, the cheaper by latency x (outstanding + 1) / weight wins', () => {
    const [, b, c] = targets();
    b!.observeLatency(10, 0); c!.observeLatency(100, 0);
    // Draws b then c (indexes 0 and 0 of what is left): b is ten times cheaper.
    assert.equal(port(new PowerOfTwoChoices(draws(0, 0)).pick([b!, c!], 0)), '2');
    // Loaded: 10 x 10 = 100 is dearer than c's 100 x 1? Equal: the first drawn stays.
    b!.outstanding = 9;
    assert.equal(port(new PowerOfTwoChoices(draws(0, 0)).pick([b!, c!], 0)), '2');
    b!.outstanding = 10;
    assert.equal(port(new PowerOfTwoChoices(draws(0, 0)).pick([b!, c!], 0)), '3', '10 x 11 = 110 > 100');
  });

  it('p2c: always two different candidates; weight divides the price', () => {
    const [a, b, c] = targets();
    for (const t of [a!, b!, c!]) t.observeLatency(10, 0);
    b!.outstanding = 1;
    // The second draw skips the first: 0.0 and 0.0 draw a and b, never a twice.
    assert.equal(port(new PowerOfTwoChoices(draws(0, 0)).pick([b!, a!, c!], 0)), '1');
    a!.outstanding = 4;
    // a: 10 x 5 / 5 = 10, under b's 10 x 2 / 1 = 20: its weight divides its price.
    assert.equal(port(new PowerOfTwoChoices(draws(0.5, 0)).pick([b!, a!, c!], 0)), '1');
  });

  it('p2c: a target with requests out and no latency yet is priced out; with none out it is free to try', () => {
    const [, b, c] = targets();
    b!.observeLatency(500, 0);
    assert.equal(port(new PowerOfTwoChoices(draws(0, 0)).pick([b!, c!], 0)), '3', 'unmeasured and idle: cost 0');
    c!.outstanding = 1;
    assert.equal(port(new PowerOfTwoChoices(draws(0, 0)).pick([b!, c!], 0)), '2', 'one request out and no answer yet: wait for it');
  });

  it('p2c: a slow target everyone avoids fades back into the race with time (τ = ewma_decay_ms)', () => {
    const [, b, c] = targets();
    b!.observeLatency(10, 0); c!.observeLatency(1000, 0);
    b!.outstanding = 5;
    assert.equal(port(new PowerOfTwoChoices(draws(0, 0)).pick([b!, c!], 0)), '2');
    b!.observeLatency(10, 30_000);
    // 30 s on, c's 1000 ms has faded to 1000 e^-3 = 50 ms, under b's 10 x 6.
    assert.equal(port(new PowerOfTwoChoices(draws(0, 0)).pick([b!, c!], 30_000)), '3');
  });
});
