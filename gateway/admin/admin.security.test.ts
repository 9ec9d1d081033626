// The admin port as an attacker meets it: several labelled tokens, no timing difference a
// client can measure between wrong tokens near and far from a real one, a flood of wrong
// tokens slowed per address, and an audit log that records every change by token label
// with no secret in it.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { admin, createKey } from '../../test/harness/admin.js';
import { startBackend } from '../../test/harness/backend.js';
import { ADMIN_TOKEN, sha256, testConfig } from '../../test/harness/config.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { contractOf, type Seen } from '../../test/harness/openapi-contract.js';
import { startRedis, type RedisProcess } from '../../test/harness/redis.js';
import { adminOpenApiText } from './routes.js';

const ALICE = 'alice-token-0123456789abcdef';
const BOB = 'bob-token-0123456789abcdef01';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

describe('admin port security', { timeout: 120_000 }, () => {
  let backend: Awaited<ReturnType<typeof startBackend>>;
  let redis: RedisProcess;
  let gw: GatewayProcess;
  let throttled: GatewayProcess;
  before(async () => {
    backend = await startBackend();
    redis = await startRedis();
    [gw, throttled] = await Promise.all([
      spawnGateway(testConfig({
        upstreams: [backend.url], store: { kind: 'redis', url: redis.url },
        admin: { tokens: [{ label: 'alice', digest: sha256(ALICE) }, { label: 'bob', digest: sha256(BOB) }], auth_failures: { max: 100_000 } },
      })),
      spawnGateway(testConfig({ upstreams: [backend.url], admin: { auth_failures: { max: 3, max_backoff_ms: 2000 } } })),
    ]);
  });
  after(async () => {
    await Promise.all([gw?.stop(), throttled?.stop()]);
    await redis?.stop();
    await backend?.close();
  });

  it('several tokens, each audited under its own label; admin.token_digest still works, as "admin"', async () => {
    assert.equal((await admin(gw.adminUrl, 'PUT', '/admin/customers/labelled', { plan: 'test' }, ALICE)).status, 200);
    assert.equal((await admin(gw.adminUrl, 'PUT', '/admin/customers/labelled', { plan: 'test', overrides: { rate: 5 } }, BOB)).status, 200);
    assert.equal((await admin(gw.adminUrl, 'PUT', '/admin/customers/labelled', { plan: 'test' }, ADMIN_TOKEN)).status, 200);
    const log = await admin(gw.adminUrl, 'GET', '/admin/audit?action=customer.put&limit=3');
    assert.equal(log.status, 200);
    assert.deepEqual(log.body.entries.map((e: { actor: string; details: object }) => [e.actor, e.details]), [
      ['admin', { plan: 'test', overrides: {} }], ['bob', { plan: 'test', overrides: { rate: 5 } }], ['alice', { plan: 'test', overrides: {} }],
    ]);
    assert.deepEqual((await admin(gw.adminUrl, 'GET', '/admin/audit?actor=bob')).body.entries.map((e: { actor: string }) => e.actor), ['bob']);
  });

  it('a token added to the config and reloaded (SIGHUP) works, under its own label; a removed one stops', async () => {
    const carol = 'carol-token-0123456789abcdef';
    const text = readFileSync(gw.file, 'utf8').replace(`label: bob\n`, `label: carol\n`).replace(sha256(BOB), sha256(carol));
    writeFileSync(gw.file, text);
    gw.child.kill('SIGHUP');
    await gw.waitForLine((l) => l.msg === 'reload done');
    assert.equal((await admin(gw.adminUrl, 'PUT', '/admin/customers/reloaded', { plan: 'test' }, carol)).status, 200);
    assert.equal((await admin(gw.adminUrl, 'GET', '/admin/keys', undefined, BOB)).status, 401, "bob's token is gone");
    assert.equal((await admin(gw.adminUrl, 'GET', '/admin/audit?limit=1')).body.entries[0].actor, 'carol');
    writeFileSync(gw.file, text.replace(`label: carol\n`, `label: bob\n`).replace(sha256(carol), sha256(BOB)));
    gw.child.kill('SIGHUP');
    await gw.waitForLine((l) => l.msg === 'reload done' && gw.lines.filter((x) => x.msg === 'reload done').length === 2);
  });

  it('every admin change is in the audit log, newest first, and no token, key or digest of either is in it', async () => {
    const { key, digest } = await createKey(gw.adminUrl, 'audited', 'test');
    const patched = await admin(gw.adminUrl, 'PATCH', `/admin/keys/${digest}`, { label: 'ci', allow: ['10.0.0.0/8'] });
    assert.equal(patched.status, 200);
    const rotated = await admin(gw.adminUrl, 'POST', `/admin/keys/${digest}/rotate`, { grace_seconds: 60 }, ALICE);
    assert.equal(rotated.status, 201);
    assert.equal((await admin(gw.adminUrl, 'DELETE', `/admin/keys/${rotated.body.digest}`, undefined, BOB)).status, 204);
    // A refused change is not a change.
    assert.equal((await admin(gw.adminUrl, 'PUT', '/admin/customers/audited', { plan: 'nope' })).status, 400);
    const log = await admin(gw.adminUrl, 'GET', '/admin/audit?limit=4');
    const entries = log.body.entries as { actor: string; action: string; target: string; source: string; at: string; request_id: string; peer: string }[];
    assert.deepEqual(entries.map((e) => [e.actor, e.action, e.target]), [
      ['bob', 'key.revoke', rotated.body.digest.slice(0, 12)],
      ['alice', 'key.rotate', digest.slice(0, 12)],
      ['admin', 'key.update', digest.slice(0, 12)],
      ['admin', 'key.create', digest.slice(0, 12)],
    ]);
    for (const e of entries) {
      assert.equal(e.source, 'gateway');
      assert.ok(Math.abs(Date.parse(e.at) - Date.now()) < 60_000, e.at);
      assert.match(e.request_id, /\S/);
      assert.equal(e.peer, '127.0.0.1');
    }
    const text = (await admin(gw.adminUrl, 'GET', '/admin/audit?limit=1000')).text;
    for (const secret of [key, rotated.body.key, digest, rotated.body.digest, ADMIN_TOKEN, ALICE, BOB, sha256(ADMIN_TOKEN), sha256(ALICE), sha256(BOB)]) {
      assert.ok(!text.includes(secret), `the audit log holds ${secret.slice(0, 8)}...`);
    }
    assert.ok(!/whsec_|sluice_live_/.test(text));
  });

  it('the audit log lives in Redis (a stream trimmed by age), shared by every gateway on it', async () => {
    const second = await spawnGateway(testConfig({ upstreams: [backend.url], store: { kind: 'redis', url: redis.url } }));
    try {
      const mine = await admin(gw.adminUrl, 'GET', '/admin/audit?limit=5');
      const theirs = await admin(second.adminUrl, 'GET', '/admin/audit?limit=5');
      assert.deepEqual(theirs.body.entries, mine.body.entries);
      const page = await admin(gw.adminUrl, 'GET', `/admin/audit?limit=2&before=${mine.body.entries[1].id}`);
      assert.deepEqual(page.body.entries, mine.body.entries.slice(2, 4), 'paged by id');
      assert.equal((await admin(gw.adminUrl, 'GET', '/admin/audit?limit=0')).status, 400);
      assert.equal((await admin(gw.adminUrl, 'GET', '/admin/audit?before=yesterday')).status, 400);
    } finally {
      await second.stop();
    }
  });

  it('a wrong token takes no measurably different time whether it is near a real token or nothing like one', async (t) => {
    // Near: a real token with its last character changed; far: random of the same length;
    // short: one character. Interleaved, so the host's load falls on every kind alike.
    const kinds: Record<string, () => string> = {
      near: () => `${ALICE.slice(0, -1)}X`,
      far: () => Math.random().toString(36).slice(2).padEnd(ALICE.length, 'z').slice(0, ALICE.length),
      short: () => 'x',
    };
    const times: Record<string, number[]> = { near: [], far: [], short: [] };
    const call = async (token: string): Promise<number> => {
      const start = process.hrtime.bigint();
      const res = await request(`${gw.adminUrl}/admin/keys`, { headers: { authorization: `Bearer ${token}` } });
      await res.body.dump();
      assert.equal(res.statusCode, 401);
      return Number(process.hrtime.bigint() - start) / 1e6;
    };
    for (let i = 0; i < 20; i++) for (const k of Object.keys(kinds)) await call(kinds[k]!());
    for (let i = 0; i < 300; i++) for (const k of Object.keys(kinds)) times[k]!.push(await call(kinds[k]!()));
    const m = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
    t.diagnostic(`median ms: near ${m.near!.toFixed(3)}, far ${m.far!.toFixed(3)}, short ${m.short!.toFixed(3)}`);
    // A comparison that stopped at the first differing byte would differ by nanoseconds;
    // anything a client can tell apart over HTTP (an extra lookup, a sleep) is far above this bound.
    const bound = Math.max(0.3, 0.25 * Math.min(m.near!, m.far!, m.short!));
    for (const [a, b] of [['near', 'far'], ['near', 'short'], ['far', 'short']] as const) {
      assert.ok(Math.abs(m[a]! - m[b]!) < bound, `${a} ${m[a]!.toFixed(3)} ms vs ${b} ${m[b]!.toFixed(3)} ms (bound ${bound.toFixed(3)} ms)`);
    }
  });

  it('the admin document is valid OpenAPI 3.1 (swagger-parser) and describes every answer of every operation', async () => {
    const served = await request(`${gw.adminUrl}/admin/openapi.json`);
    const doc = await served.body.json() as object;
    assert.equal(JSON.stringify(doc), JSON.stringify(JSON.parse(adminOpenApiText().toString())));
    const contract = await contractOf(doc);
    const problems: string[] = [];
    const call = async (base: string, method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, body?: unknown, token: string | null = ALICE): Promise<Seen & { json: any }> => {
      const res = await request(`${base}${path}`, {
        method, body: body === undefined ? undefined : JSON.stringify(body),
        headers: { ...(token === null ? {} : { authorization: `Bearer ${token}` }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      });
      const s: Seen = { method, url: path, status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
      problems.push(...contract.check(s));
      const text = s.body.toString('utf8');
      return { ...s, json: String(res.headers['content-type']).includes('json') && text !== '' ? JSON.parse(text) : undefined };
    };
    const a = gw.adminUrl;
    for (const p of ['/healthz', '/readyz', '/metrics', '/admin/openapi.json']) assert.equal((await call(a, 'GET', p, undefined, null)).status, 200);
    const created = await call(a, 'POST', '/admin/keys', { customer: 'contract', plan: 'test', expires_at: Date.now() + 86_400_000, allow: ['127.0.0.1'] });
    assert.equal(created.status, 201);
    const d = created.json.digest as string;
    assert.equal((await call(a, 'POST', '/admin/keys', { customer: 'contract', plan: 'test', allow: ['nowhere'] })).status, 400);
    assert.equal((await call(a, 'GET', '/admin/keys?customer=contract')).status, 200);
    assert.equal((await call(a, 'PATCH', `/admin/keys/${d}`, { expires_at: null, allow: null })).status, 200);
    assert.equal((await call(a, 'PATCH', `/admin/keys/${'0'.repeat(64)}`, {})).status, 404);
    const rotated = await call(a, 'POST', `/admin/keys/${d}/rotate`, {});
    assert.equal(rotated.status, 201);
    assert.equal((await call(a, 'POST', `/admin/keys/${d}/rotate`, {})).status, 409);
    assert.equal((await call(a, 'DELETE', `/admin/keys/${rotated.json.digest}`)).status, 204);
    assert.equal((await call(a, 'DELETE', `/admin/keys/${rotated.json.digest}`)).status, 404);
    assert.equal((await call(a, 'DELETE', '/admin/keys/nope')).status, 400);
    assert.equal((await call(a, 'PUT', '/admin/customers/contract', { plan: 'test', overrides: { rate: 3 } })).status, 200);
    assert.equal((await call(a, 'PUT', '/admin/customers/contract', { plan: 'nope' })).status, 400);
    assert.equal((await call(a, 'GET', '/admin/customers/contract')).status, 200);
    assert.equal((await call(a, 'GET', '/admin/customers/nobody')).status, 404);
    assert.equal((await call(a, 'GET', '/admin/customers/contract/usage')).status, 200);
    assert.equal((await call(a, 'GET', '/admin/audit?limit=3')).status, 200);
    assert.equal((await call(a, 'GET', '/admin/audit?limit=x')).status, 400);
    assert.equal((await call(a, 'POST', '/admin/webhook-keys/rewrap')).status, 503, 'this gateway has no master key');
    assert.equal((await call(a, 'GET', '/admin/keys', undefined, 'wrong')).status, 401);
    assert.equal((await call(a, 'DELETE', '/admin/keys')).status, 405);
    assert.equal((await call(a, 'POST', '/admin/keys', 'x'.repeat(70_000))).status, 413);
    assert.deepEqual(problems, []);
    assert.deepEqual(contract.operations().filter((op) => !contract.used.has(op)), []);
  });

  it('a flood of wrong tokens is slowed: past admin.auth_failures.max, 429 with Retry-After, the token unchecked, until the backoff ends', async () => {
    const url = throttled.adminUrl;
    for (let i = 0; i < 3; i++) assert.equal((await admin(url, 'GET', '/admin/keys', undefined, `wrong-${i}`)).status, 401, `failure ${i + 1} is free`);
    const slowed = await admin(url, 'GET', '/admin/keys', undefined, 'wrong-3');
    assert.equal(slowed.status, 401, 'the fourth is still checked, and starts the backoff');
    const blocked = await admin(url, 'GET', '/admin/keys', undefined, ADMIN_TOKEN);
    assert.equal(blocked.status, 429, 'while backing off even the right token is not looked at');
    assert.equal(blocked.body.error.code, 'rate_limited');
    assert.equal(blocked.headers['retry-after'], '1');
    assert.equal((await admin(url, 'GET', '/healthz', undefined, null)).status, 200, 'probes are not slowed');
    const waited = Date.now();
    let ok = await admin(url, 'GET', '/admin/keys', undefined, ADMIN_TOKEN);
    while (ok.status === 429 && Date.now() - waited < 5000) {
      await new Promise((r) => setTimeout(r, 100));
      ok = await admin(url, 'GET', '/admin/keys', undefined, ADMIN_TOKEN);
    }
    assert.equal(ok.status, 200, 'the right token works once the backoff is over');
    assert.equal((await admin(url, 'GET', '/admin/keys', undefined, 'wrong-again')).status, 401, 'and a right token forgave the address');
  });
});
