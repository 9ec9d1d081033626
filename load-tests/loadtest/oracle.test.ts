import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Oracle, parseSfList } from './oracle.js';
import type { Sample } from './samples.js';
import type { ExpectedPlan, Group } from './scenario.js';

// The oracle on hand-made answers: what a perfect gateway answers must pass, and each
// kind of mistake must be caught and counted once, with the stated tolerance.

const TOL = 5;

function group(plan: Partial<ExpectedPlan>, kind: Group['kind'] = 'normal'): Group {
  const request = { method: 'GET', path: '/', bodyFiles: [], headers: {}, cost: 1 };
  return {
    name: kind === 'invalid' ? 'invalid' : 'g', kind, weight: 1,
    keys: kind === 'invalid' ? { kind: 'invalid', count: 1 } : { kind: 'file', file: '/dev/null' },
    plan: kind === 'invalid' ? undefined : { rate: 0, burst: 0, quotaDay: 0, quotaMonth: 0, maxInflight: 0, ...plan },
    choice: 'uniform', zipfS: 1, request, mix: [{ weight: 1, request }],
  };
}

/** One request to key 0: sent at `sent` ms, answered `latency` ms later. */
function s(i: number, sent: number, status: number, latency = 1, extra: Partial<Sample> = {}): Sample {
  return { i, t: 0, sent, head: sent + latency, end: sent + latency, status, ...extra };
}

function judge(g: Group, samples: Sample[]): ReturnType<Oracle['keyVerdicts']>[number] & { group: Oracle['groups'][number] } {
  // A Monday at noon UTC: no day or month boundary inside any test.
  const o = new Oracle([g], { toleranceMs: TOL, decisionWindowMs: 50 }, () => 0, () => 0, Date.UTC(2026, 5, 1, 12));
  o.add(samples, Infinity);
  o.finish();
  return { ...o.keyVerdicts(0)[0]!, group: o.groups[0]! };
}

/** What an exact token bucket answers to requests at these times (decided at send). */
function exactBucket(rate: number, burst: number, times: number[]): Sample[] {
  let tokens = burst;
  let last = 0;
  return times.map((t, i) => {
    tokens = Math.min(burst, tokens + ((t - last) * rate) / 1000);
    last = t;
    if (tokens >= 1) { tokens -= 1; return s(i, t, 200); }
    return s(i, t, 429, 1, { code: 'rate_limited', retryAfter: '1' });
  });
}

test('an exact token bucket is judged exact: no over-admission, no wrong refusal', () => {
  const times = Array.from({ length: 400 }, (_, k) => k * 25); // 40/s against 10/s burst 5
  const v = judge(group({ rate: 10, burst: 5 }), exactBucket(10, 5, times));
  assert.equal(v.overAdmitted, 0);
  assert.equal(v.wronglyRefused, 0);
  assert.ok(v.refused > 250, `the bucket refused ${v.refused}`);
  assert.equal(v.admitted + v.refused, 400);
});

test('a gateway that lets everything through is over-admitted by exactly the excess', () => {
  // 100 requests at once against burst 5: 5 are allowed, 95 are over.
  const samples = Array.from({ length: 100 }, (_, k) => s(k, 1000 + k * 0.01, 200));
  const v = judge(group({ rate: 1, burst: 5 }), samples);
  assert.equal(v.overAdmitted, 95);
  assert.deepEqual(v.group.overAdmittedBy, { rate: 95 });
});

test('admissions within the timing tolerance of a new token are not counted as over-admitted', () => {
  // Burst 1, 10/s: a token every 100 ms. The second request is sent 97 ms after the first:
  // 3 ms early, inside the 5 ms tolerance.
  const v = judge(group({ rate: 10, burst: 1 }), [s(0, 0, 200), s(1, 97, 200)]);
  assert.equal(v.overAdmitted, 0);
  // 20 ms early (and answered at once) is beyond any tolerance.
  const w = judge(group({ rate: 10, burst: 1 }), [s(0, 0, 200), s(1, 80, 200, 1)]);
  assert.equal(w.overAdmitted, 1);
});

test('a slow answer widens the window in which the decision may have happened', () => {
  // Sent 80 ms after the first, answered 30 ms later: the gateway may have decided at 105 ms.
  const v = judge(group({ rate: 10, burst: 1 }), [s(0, 0, 200), s(1, 80, 200, 30)]);
  assert.equal(v.overAdmitted, 0);
});

test('a 429 while the bucket surely had a token is a wrong refusal; one near the edge is not', () => {
  const plan = { rate: 10, burst: 2 };
  const refused = (i: number, t: number): Sample => s(i, t, 429, 1, { code: 'rate_limited', retryAfter: '1' });
  assert.equal(judge(group(plan), [s(0, 0, 200), refused(1, 10)]).wronglyRefused, 1, 'one token was left');
  assert.equal(judge(group(plan), [s(0, 0, 200), s(1, 1, 200), refused(2, 10)]).wronglyRefused, 0, 'bucket empty');
  // The bucket refills one token at 100 ms; at 97 ms it is within tolerance of having none.
  assert.equal(judge(group(plan), [s(0, 0, 200), s(1, 1, 200), refused(2, 97)]).wronglyRefused, 0);
  assert.equal(judge(group(plan), [s(0, 0, 200), s(1, 1, 200), refused(2, 130)]).wronglyRefused, 1);
});

test('a refusal is judged after later-sent requests the gateway may have decided first', () => {
  // One token. B, sent 1 ms after A, took it (the gateway saw B first); A's 429 is right.
  const v = judge(group({ rate: 1, burst: 1 }), [s(0, 0, 429, 20, { code: 'rate_limited', retryAfter: '1' }), s(1, 1, 200, 2)]);
  assert.equal(v.wronglyRefused, 0);
  assert.equal(v.overAdmitted, 0);
});

test('the day quota: the request after the quota is over-admitted, a 429 before it is wrong', () => {
  const plan = { quotaDay: 3 };
  const ok = [0, 1, 2].map((k) => s(k, k * 10, 200));
  assert.equal(judge(group(plan), [...ok, s(3, 40, 200)]).overAdmitted, 1);
  assert.deepEqual(judge(group(plan), [...ok, s(3, 40, 200)]).group.overAdmittedBy, { quota_day: 1 });
  assert.equal(judge(group(plan), [...ok, s(3, 40, 429, 1, { code: 'quota_exceeded', retryAfter: '3600' })]).wronglyRefused, 0);
  assert.equal(judge(group(plan), [ok[0]!, s(1, 20, 429, 1, { code: 'quota_exceeded', retryAfter: '3600' })]).wronglyRefused, 1);
});

test('in flight: a third request while two surely are in flight is over-admitted against max_inflight 2', () => {
  const plan = { maxInflight: 2 };
  // Two 1-second requests, then a third 200 ms in (beyond the 50 ms decision window).
  const long = [s(0, 0, 200, 1000), s(1, 1, 200, 1000)];
  assert.equal(judge(group(plan), [...long, s(2, 200, 200, 5)]).overAdmitted, 1);
  assert.equal(judge(group(plan), [...long, s(2, 200, 429, 5, { code: 'concurrency_limited', retryAfter: '1' })]).wronglyRefused, 0);
  // After the first one finished, a third is fine, and refusing it is wrong.
  assert.equal(judge(group(plan), [...long, s(2, 1100, 200, 5)]).overAdmitted, 0);
  assert.equal(judge(group(plan), [s(0, 0, 200, 100), s(1, 1, 200, 100), s(2, 300, 429, 5, { code: 'concurrency_limited', retryAfter: '1' })]).wronglyRefused, 1);
});

test('in-flight over-admissions can be dropped when the decision-window assumption does not hold', () => {
  const o = new Oracle([group({ maxInflight: 1, rate: 0.1, burst: 2 })], { toleranceMs: TOL, decisionWindowMs: 50 }, () => 0, () => 0, Date.UTC(2026, 5, 1, 12));
  // The second: over the in-flight limit only (the bucket had a token); the fourth: over the bucket.
  o.add([s(0, 0, 200, 1000), s(1, 200, 200, 5), s(2, 1100, 200, 5), s(3, 1200, 200, 5)], Infinity);
  o.finish();
  assert.deepEqual([o.groups[0]!.overAdmitted, o.groups[0]!.inflightOnly], [2, 1]);
  o.dropInflightOnly();
  assert.equal(o.groups[0]!.overAdmitted, 1);
  assert.equal(o.keyVerdicts(0)[0]!.overAdmitted, 1);
});

test('ambiguous answers (503, no answer) are never judged, and may have taken a token', () => {
  const v = judge(group({ rate: 1, burst: 1 }), [s(0, 0, 503), s(1, 10, 429, 1, { code: 'rate_limited', retryAfter: '1' }), s(2, 20, 0)]);
  assert.equal(v.wronglyRefused, 0);
  assert.equal(v.overAdmitted, 0);
});

test('invalid keys must be refused with 401; one let through is over-admitted', () => {
  const o = new Oracle([group({}, 'invalid')], { toleranceMs: TOL, decisionWindowMs: 50 }, () => 0, (i) => i, 0);
  o.add([s(0, 0, 401), s(1, 1, 200), s(2, 2, 401)], Infinity);
  o.finish();
  assert.equal(o.groups[0]!.overAdmitted, 1);
  assert.equal(o.groups[0]!.authErrors, 1);
  assert.deepEqual(o.groups[0]!.overAdmittedBy, { auth: 1 });
});

test('headers: a 429 without Retry-After, a policy that is not the plan, r above the burst', () => {
  const plan = { rate: 10, burst: 5 };
  const policy = '"free";q=5;w=1';
  const good = s(0, 0, 200, 1, { rateLimitPolicy: policy, rateLimit: '"free";r=4;t=1' });
  assert.equal(judge(group(plan), [good]).headerIssues, 0);
  assert.equal(judge(group(plan), [s(0, 0, 200, 1, { rateLimitPolicy: '"free";q=50;w=5' })]).headerIssues, 1);
  assert.equal(judge(group(plan), [s(0, 0, 200, 1, { rateLimit: '"free";r=9;t=1' })]).headerIssues, 1);
  const noRetry = Array.from({ length: 6 }, (_, k) => (k < 5 ? s(k, k, 200) : s(k, k, 429, 1, { code: 'rate_limited' })));
  assert.equal(judge(group(plan), noRetry).headerIssues, 1);
  const tooLong = Array.from({ length: 6 }, (_, k) => (k < 5 ? s(k, k, 200) : s(k, k, 429, 1, { code: 'rate_limited', retryAfter: '30' })));
  assert.equal(judge(group(plan), tooLong).headerIssues, 1, 'a token comes within 1 s at 10/s');
});

/** Requests i of cost costs[i], judged in units. */
function judgeUnits(g: Group, costs: number[], samples: Sample[]): Oracle['groups'][number] {
  const o = new Oracle([g], { toleranceMs: TOL, decisionWindowMs: 50 }, () => 0, () => 0, Date.UTC(2026, 5, 1, 12), (i) => costs[i]!);
  o.add(samples, Infinity);
  o.finish();
  return o.groups[0]!;
}

test('units: an exact bucket of units passes with cheap and dear requests mixed; one that counts requests is caught', () => {
  // 10 units/s, burst 10; requests of 1 and 5 units alternating, 10 a second.
  const times = Array.from({ length: 200 }, (_, k) => k * 100);
  const costs = times.map((_, k) => (k % 2 === 0 ? 1 : 5));
  let tokens = 10;
  let last = 0;
  const exact = times.map((t, i) => {
    tokens = Math.min(10, tokens + ((t - last) * 10) / 1000);
    last = t;
    if (tokens >= costs[i]!) { tokens -= costs[i]!; return s(i, t, 200); }
    return s(i, t, 429, 1, { code: 'rate_limited', retryAfter: '1' });
  });
  const ok = judgeUnits(group({ rate: 10, burst: 10 }), costs, exact);
  assert.deepEqual([ok.overAdmitted, ok.wronglyRefused, ok.headerIssues], [0, 0, 0]);
  assert.equal(ok.units, exact.reduce((a, x, i) => a + (x.status === 200 ? costs[i]! : 0), 0));
  // A gateway that takes one token a request admits all of them: 3 units a second too many.
  tokens = 10;
  last = 0;
  const perRequest = times.map((t, i) => {
    tokens = Math.min(10, tokens + ((t - last) * 10) / 1000);
    last = t;
    if (tokens >= 1) { tokens -= 1; return s(i, t, 200); }
    return s(i, t, 429, 1, { code: 'rate_limited', retryAfter: '1' });
  });
  const caught = judgeUnits(group({ rate: 10, burst: 10 }), costs, perRequest);
  assert.equal(caught.admitted, 200);
  assert.ok(caught.overAdmitted > 50, `over-admitted ${caught.overAdmitted}`);
  assert.deepEqual(Object.keys(caught.overAdmittedBy), ['rate']);
});

test('units: a day quota of 10 units takes two requests of 5, and not a third of 1 after them', () => {
  const plan = { quotaDay: 10 };
  assert.equal(judgeUnits(group(plan), [5, 5, 1], [s(0, 0, 200), s(1, 10, 200), s(2, 20, 200)]).overAdmitted, 1);
  assert.equal(judgeUnits(group(plan), [5, 4, 1], [s(0, 0, 200), s(1, 10, 200), s(2, 20, 200)]).overAdmitted, 0);
  // A 429 for 6 units with 5 left is right; for 5 with 5 left it is wrong.
  const q = (i: number, t: number): Sample => s(i, t, 429, 1, { code: 'quota_exceeded', retryAfter: '3600' });
  assert.equal(judgeUnits(group(plan), [5, 6], [s(0, 0, 200), q(1, 10)]).wronglyRefused, 0);
  assert.equal(judgeUnits(group(plan), [5, 5], [s(0, 0, 200), q(1, 10)]).wronglyRefused, 1);
});

test('RateLimit fields parse as structured field lists, and garbage does not', () => {
  assert.deepEqual(parseSfList('"pro";r=19;t=1, "pro-day";r=990;t=3600'), [
    { name: 'pro', params: { r: 19, t: 1 } }, { name: 'pro-day', params: { r: 990, t: 3600 } },
  ]);
  assert.equal(parseSfList('pro;r=1'), undefined);
});
