import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { buildIdentity, type Identity } from '../auth/identity.js';
import type { PlanConfig } from '../config/types.js';
import { MemoryStore } from '../store/memory-store.js';
import type { Decision, LimitPolicy } from '../store/types.js';
import { sha256, testConfig } from '../../test/harness/config.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { startTestBackend, type TestBackend } from '../../test/harness/test-backend.js';
import { rateLimitPolicyValue, sfString } from '../rate-limit-fields/structured-fields.js';
import { rateLimitValue, retryAfterSeconds } from './rate-limit-headers.js';

// RateLimit-Policy and RateLimit as draft-ietf-httpapi-ratelimit-headers-10 defines them:
// Structured Field Lists (RFC 9651) whose members are Items with a String bare item;
// RateLimit-Policy needs q (non-negative Integer), w is a positive Integer;
// RateLimit needs r (non-negative Integer), t is a non-negative Integer. The parser
// below is a strict reading of RFC 9651 §4.2 for the parts these fields use, written
// here so the test does not trust the code it checks.

type Bare = { type: 'string' | 'token' | 'integer' | 'decimal' | 'boolean' | 'binary'; value: string | number | boolean };
interface SfItem { value: Bare; params: Map<string, Bare> }

function parseList(input: string): SfItem[] {
  let i = 0;
  const s = input;
  const fail = (why: string): never => { throw new Error(`not an sf-list (${why}) at ${i}: ${JSON.stringify(s)}`); };
  const ows = (): void => { while (s[i] === ' ' || s[i] === '\t') i++; };
  const bare = (): Bare => {
    const c = s[i];
    if (c === undefined) return fail('missing item');
    if (c === '-' || /[0-9]/.test(c)) {
      const m = /^-?([0-9]{1,15})(\.[0-9]{1,3})?/.exec(s.slice(i));
      if (m === null) return fail('bad number');
      if (m[2] === undefined && /^[0-9]/.test(s.slice(i + m[0].length))) return fail('integer over 15 digits');
      i += m[0].length;
      return m[2] === undefined ? { type: 'integer', value: Number(m[0]) } : { type: 'decimal', value: Number(m[0]) };
    }
    if (c === '"') {
      i++;
      let out = '';
      for (;;) {
        const ch = s[i++];
        if (ch === undefined) return fail('unterminated string');
        if (ch === '"') return { type: 'string', value: out };
        if (ch === '\\') {
          const e = s[i++];
          if (e !== '"' && e !== '\\') return fail('bad escape');
          out += e;
          continue;
        }
        const code = ch.charCodeAt(0);
        if (code < 0x20 || code > 0x7e) return fail('non-printable character in string');
        out += ch;
      }
    }
    if (c === '?') { i++; const b = s[i++]; if (b !== '0' && b !== '1') return fail('bad boolean'); return { type: 'boolean', value: b === '1' }; }
    if (c === ':') { const m = /^:([A-Za-z0-9+/=]*):/.exec(s.slice(i)); if (m === null) return fail('bad binary'); i += m[0].length; return { type: 'binary', value: m[1]! }; }
    const m = /^[A-Za-z*][A-Za-z0-9:/!#$%&'*+\-.^_`|~]*/.exec(s.slice(i));
    if (m === null) return fail('bad bare item');
    i += m[0].length;
    return { type: 'token', value: m[0] };
  };
  const params = (): Map<string, Bare> => {
    const out = new Map<string, Bare>();
    while (s[i] === ';') {
      i++;
      while (s[i] === ' ') i++;
      const m = /^[a-z*][a-z0-9_\-.*]*/.exec(s.slice(i));
      if (m === null) return fail('bad parameter key');
      i += m[0].length;
      if (s[i] === '=') { i++; out.set(m[0], bare()); } else out.set(m[0], { type: 'boolean', value: true });
    }
    return out;
  };
  const items: SfItem[] = [];
  if (/^[ \t]|[ \t]$/.test(s)) fail('surrounding white space is stripped by HTTP, so a field never has it');
  if (s === '') return items;
  for (;;) {
    if (s[i] === '(') fail('inner lists are not allowed here');
    items.push({ value: bare(), params: params() });
    ows();
    if (i === s.length) return items;
    if (s[i] !== ',') fail('expected ,');
    i++;
    ows();
    if (i === s.length) fail('trailing comma');
  }
}

function int(p: Map<string, Bare>, key: string): number | undefined {
  const v = p.get(key);
  if (v === undefined) return undefined;
  assert.equal(v.type, 'integer', `${key} must be an Integer, got ${JSON.stringify(v)}`);
  return v.value as number;
}

/** Validates RateLimit-Policy; returns policy name → {q, w}. */
function checkPolicyField(value: string): Map<string, { q: number; w: number | undefined }> {
  const items = parseList(value);
  assert.ok(items.length > 0, 'RateLimit-Policy is a non-empty List');
  const out = new Map<string, { q: number; w: number | undefined }>();
  for (const it of items) {
    assert.equal(it.value.type, 'string', 'a quota policy item is a String');
    const q = int(it.params, 'q');
    assert.ok(q !== undefined && q >= 0, 'q is REQUIRED and non-negative');
    const w = int(it.params, 'w');
    assert.ok(w === undefined || w > 0, 'w is a non-zero, non-negative Integer');
    assert.ok(!out.has(it.value.value as string), 'policy names are unique');
    out.set(it.value.value as string, { q, w });
  }
  return out;
}

/** Validates RateLimit; returns policy name → {r, t}. */
function checkLimitField(value: string): Map<string, { r: number; t: number | undefined }> {
  const items = parseList(value);
  assert.ok(items.length > 0);
  const out = new Map<string, { r: number; t: number | undefined }>();
  for (const it of items) {
    assert.equal(it.value.type, 'string', 'a service limit item is a String naming its policy');
    const r = int(it.params, 'r');
    assert.ok(r !== undefined && r >= 0, 'r is REQUIRED and a non-negative Integer');
    const t = int(it.params, 't');
    assert.ok(t === undefined || t >= 0, 't is a non-negative Integer');
    out.set(it.value.value as string, { r, t });
  }
  return out;
}

function checkPair(policyValue: string, limitValue: string) {
  const policies = checkPolicyField(policyValue);
  const limits = checkLimitField(limitValue);
  assert.deepEqual([...limits.keys()], [...policies.keys()], 'RateLimit has one item per policy, same names, same order');
  return { policies, limits };
}

function plan(name: string, p: Partial<PlanConfig>): PlanConfig {
  return {
    name, rate: 0, burst: 0, quota_day: 0, quota_month: 0, max_inflight: 0, max_body_bytes: 1024,
    priority: 0, scope: 'customer', failure_policy: undefined, shadow: false, deny_cache_ms: 0, ...p,
  };
}

function identity(pl: PlanConfig): Identity {
  const id = buildIdentity({ customer: 'c', planName: pl.name, keyDigest: undefined, configCustomer: undefined, storedCustomer: undefined },
    new Map([[pl.name, pl]]), 'open');
  assert.ok(id);
  return id;
}

function decision(d: Partial<Decision>): Decision {
  return {
    allowed: true, reason: undefined, remaining: 0, retryAfterMs: 0, fullInMs: 0, dayUsed: 0, monthUsed: 0,
    inflight: 0, dayResetMs: 3_600_000, monthResetMs: 86_400_000, ...d,
  };
}

describe('RateLimit headers: draft-ietf-httpapi-ratelimit-headers-10 syntax and meaning', () => {
  it('the parser used here rejects what the draft forbids (so the checks below can fail)', () => {
    assert.throws(() => checkPolicyField('pro;q=5'), /String/, 'a Token is not a String');
    assert.throws(() => checkPolicyField('"pro";q=2.5'), /Integer/);
    assert.throws(() => checkPolicyField('"pro";w=5'), /REQUIRED/);
    assert.throws(() => checkPolicyField('"pro";q=5;w=0'), /non-zero/);
    assert.throws(() => checkLimitField('"pro";r=-1'), /non-negative/);
    assert.throws(() => checkLimitField('"pro";r=1,'), /trailing comma/);
    assert.throws(() => checkLimitField('"a"b";r=1'), /expected ,|bad/);
    assert.throws(() => checkLimitField('"caf\u00e9";r=1'), /non-printable/);
    assert.throws(() => checkLimitField('"pro";R=1'), /parameter key|REQUIRED/);
    assert.throws(() => checkLimitField('"pro";r=1234567890123456'), /15 digits/);
    checkPair('"permin";q=50;w=60,"perhr";q=1000;w=3600', '"permin";r=50;t=30, "perhr";r=999');
  });

  it('one item per limit of the plan, in both fields, with the plan\'s numbers', () => {
    const id = identity(plan('pro', { rate: 10, burst: 50, quota_day: 1000, quota_month: 20000 }));
    assert.equal(id.policyHeader, '"pro";q=50;w=5, "pro-day";q=1000;w=86400, "pro-month";q=20000;w=2592000');
    const d = decision({ remaining: 48, fullInMs: 170, dayUsed: 12, monthUsed: 345, dayResetMs: 7_200_000, monthResetMs: 90_000_500 });
    const { limits } = checkPair(id.policyHeader, rateLimitValue(id, d));
    assert.deepEqual(limits.get('pro'), { r: 48, t: 1 });
    assert.deepEqual(limits.get('pro-day'), { r: 988, t: 7200 });
    assert.deepEqual(limits.get('pro-month'), { r: 19655, t: 90001 });
  });

  it('t of the bucket is the time until one more token (draft-10 §4.1.2), not until the bucket is full', () => {
    // 0.1 token/s, burst 5, 3.25 tokens left: the 4th token is 7.5 s away, a full bucket 17.5 s.
    const id = identity(plan('slow', { rate: 0.1, burst: 5 }));
    const limits = checkLimitField(rateLimitValue(id, decision({ remaining: 3, fullInMs: 17_500 })));
    assert.deepEqual(limits.get('slow'), { r: 3, t: 8 });
    // A full bucket gets no more quota: t is left out rather than claiming "0 s".
    assert.deepEqual(checkLimitField(rateLimitValue(id, decision({ remaining: 5, fullInMs: 0 }))).get('slow'), { r: 5, t: undefined });
  });

  it('a 429 never tells the client to retry before the violated policy resets (draft-10 §6)', () => {
    const id = identity(plan('p', { rate: 0.5, burst: 3, quota_day: 10 }));
    const rate = decision({ allowed: false, reason: 'rate_limited', remaining: 0, retryAfterMs: 1400, fullInMs: 5400, dayUsed: 4 });
    assert.equal(retryAfterSeconds(rate), 2);
    assert.equal(checkLimitField(rateLimitValue(id, rate)).get('p')!.t, 2);
    const quota = decision({ allowed: false, reason: 'quota_exceeded', remaining: 2, retryAfterMs: 3_600_000, fullInMs: 500, dayUsed: 10 });
    assert.equal(retryAfterSeconds(quota), 3600);
    assert.deepEqual(checkLimitField(rateLimitValue(id, quota)).get('p-day'), { r: 0, t: 3600 });
    assert.equal(retryAfterSeconds(decision({ allowed: false, reason: 'concurrency_limited', retryAfterMs: 20 })), 1, 'at least 1 s');
  });

  it('plan names of any characters still give valid, matching items', () => {
    for (const name of ['we"ird', 'back\\slash', 'two words', 'caf\u00e9-\u00fcber', 'tab\there', '\u{1F680}', '%41']) {
      const id = identity(plan(name, { rate: 1, burst: 2, quota_day: 3, quota_month: 4 }));
      const { policies } = checkPair(id.policyHeader, rateLimitValue(id, decision({ remaining: 1, fullInMs: 700, dayUsed: 1, monthUsed: 1 })));
      assert.equal(policies.size, 3, name);
    }
    assert.equal(sfString('a"b\\c'), '"a\\"b\\\\c"');
    assert.equal(sfString('caf\u00e9'), '"caf%C3%A9"');
    assert.notEqual(sfString('\u00e9'), sfString('\u00e8'), 'distinct names stay distinct');
  });

  it('fractional and huge limits still give Integers', () => {
    const p: LimitPolicy = { rate: 0.3, burst: 2.5, quotaDay: 0, quotaMonth: 1e17, maxInflight: 0 };
    const value = rateLimitPolicyValue('odd', p);
    const policies = checkPolicyField(value);
    assert.deepEqual(policies.get('odd'), { q: 2, w: 9 });
    assert.equal(policies.get('odd-month')!.q, 999_999_999_999_999, 'clamped to the 15 digits an sf-integer allows');
    assert.equal(rateLimitPolicyValue('none', { rate: 0, burst: 0, quotaDay: 0, quotaMonth: 0, maxInflight: 5 }), '', 'no item for in-flight');
  });

  it('every decision a real store makes for a mix of plans renders as valid fields', async () => {
    let clock = Date.UTC(2025, 0, 31, 23, 59, 50);
    const store = new MemoryStore(() => clock);
    const plans = [
      plan('a', { rate: 3, burst: 2 }),
      plan('b', { rate: 0.7, burst: 4.5, quota_day: 7 }),
      plan('c', { quota_day: 5, quota_month: 6, max_inflight: 2 }),
      plan('d', { rate: 1000, burst: 1, quota_month: 3 }),
    ];
    let checked = 0;
    for (let i = 0; i < 400; i++) {
      const pl = plans[i % plans.length]!;
      const id = identity(pl);
      const d = await store.admit(pl.name, id.policy, `l${i}`, 1000);
      const { limits } = checkPair(id.policyHeader, rateLimitValue(id, d));
      if (!d.allowed && d.reason !== 'concurrency_limited') {
        // The item of the violated policy resets no later than Retry-After.
        const violated = d.reason === 'rate_limited' ? pl.name : d.dayUsed >= id.policy.quotaDay && id.policy.quotaDay > 0 ? `${pl.name}-day` : `${pl.name}-month`;
        const item = limits.get(violated);
        assert.ok(item !== undefined, `${violated} is listed`);
        assert.equal(item.r, 0, `${violated} shows nothing left`);
        assert.ok(item.t !== undefined && item.t <= retryAfterSeconds(d), `t ${item.t} <= Retry-After ${retryAfterSeconds(d)}`);
        checked++;
      }
      clock += (i * 37) % 450;
    }
    assert.ok(checked > 50, `denials checked: ${checked}`);
  });
});

describe('a 429 through the gateway', () => {
  let backend: TestBackend;
  let gw: GatewayProcess;

  before(async () => {
    backend = await startTestBackend();
    gw = await spawnGateway(testConfig({
      upstreams: [backend.url],
      plans: {
        tiny: { rate: 0.5, burst: 2 },
        daily: { quota_day: 1 },
        single: { rate: 0.01, burst: 100, max_inflight: 1 },
      },
      keys: [
        { digest: sha256('k-tiny'), customer: 'c-tiny', plan: 'tiny' },
        { digest: sha256('k-daily'), customer: 'c-daily', plan: 'daily' },
        { digest: sha256('k-single'), customer: 'c-single', plan: 'single' },
      ],
    }));
  });
  after(async () => {
    await gw?.stop();
    await backend?.close();
  });

  const call = async (key: string, path: string, requestId: string) => {
    const res = await request(`${gw.url}${path}`, { headers: { 'x-api-key': key, 'x-request-id': requestId } });
    return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
  };

  /** Everything the contract promises about a 429, whichever limit it was. */
  const check429 = (r: Awaited<ReturnType<typeof call>>, code: string, requestId: string): number => {
    assert.equal(r.status, 429, r.text);
    assert.match(String(r.headers['content-type']), /^application\/json/);
    const retryAfter = String(r.headers['retry-after']);
    assert.match(retryAfter, /^[0-9]+$/, 'Retry-After is delay-seconds');
    assert.ok(Number(retryAfter) >= 1);
    const body = JSON.parse(r.text) as { error: Record<string, unknown> };
    assert.deepEqual(Object.keys(body), ['error']);
    assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'request_id']);
    assert.equal(body.error.code, code);
    assert.equal(typeof body.error.message, 'string');
    assert.ok((body.error.message as string).length > 0);
    assert.equal(body.error.request_id, requestId);
    assert.equal(r.headers['x-request-id'], requestId);
    return Number(retryAfter);
  };

  it('rate_limited: Retry-After, RateLimit-Policy, RateLimit and the JSON error', async () => {
    const ok1 = await call('k-tiny', '/v1/x', 'tiny-1');
    const ok2 = await call('k-tiny', '/v1/x', 'tiny-2');
    assert.deepEqual([ok1.status, ok2.status], [200, 200]);
    const p1 = checkPair(String(ok1.headers['ratelimit-policy']), String(ok1.headers['ratelimit']));
    assert.deepEqual(p1.policies.get('tiny'), { q: 2, w: 4 });
    assert.equal(p1.limits.get('tiny')!.r, 1);
    assert.equal(checkLimitField(String(ok2.headers['ratelimit'])).get('tiny')!.r, 0);

    const denied = await call('k-tiny', '/v1/x', 'tiny-3');
    const retryAfter = check429(denied, 'rate_limited', 'tiny-3');
    const { limits } = checkPair(String(denied.headers['ratelimit-policy']), String(denied.headers['ratelimit']));
    assert.equal(limits.get('tiny')!.r, 0);
    assert.ok(retryAfter <= 2, 'one token at 0.5/s is at most 2 s away');
    assert.ok(limits.get('tiny')!.t! <= retryAfter, 'Retry-After is not earlier than the reset (draft-10 §6)');
    assert.equal(backend.arrivals.has('tiny-3'), false, 'the denied request never reached the upstream');
  });

  it('quota_exceeded: Retry-After points at the next UTC midnight', async () => {
    assert.equal((await call('k-daily', '/v1/x', 'daily-1')).status, 200);
    const before = Date.now();
    const denied = await call('k-daily', '/v1/x', 'daily-2');
    const retryAfter = check429(denied, 'quota_exceeded', 'daily-2');
    const toMidnight = Math.ceil((86_400_000 - (before % 86_400_000)) / 1000);
    assert.ok(Math.abs(retryAfter - toMidnight) <= 2, `Retry-After ${retryAfter} vs ${toMidnight} s to midnight`);
    const { limits } = checkPair(String(denied.headers['ratelimit-policy']), String(denied.headers['ratelimit']));
    assert.deepEqual(limits.get('daily-day'), { r: 0, t: retryAfter });
  });

  it('concurrency_limited: Retry-After and the headers of the plan\'s other limits', async () => {
    const held = call('k-single', '/hold/1', 'single-1');
    await new Promise<void>((resolve) => {
      if (backend.arrivals.has('single-1')) resolve();
      else backend.events.on('arrive', function onArrive(id: string) { if (id === 'single-1') { backend.events.off('arrive', onArrive); resolve(); } });
    });
    const denied = await call('k-single', '/v1/x', 'single-2');
    check429(denied, 'concurrency_limited', 'single-2');
    const { limits } = checkPair(String(denied.headers['ratelimit-policy']), String(denied.headers['ratelimit']));
    assert.equal(limits.get('single')!.r, 99, 'the bucket still shows the token the denial did not take');
    backend.releaseAll();
    assert.equal((await held).status, 200);
  });
});
