// The API key lifecycle, against real gateways on the memory store and on a real Redis:
// the sluice_<env>_ format and its checksum, expiry, rotation with a grace period, the
// client-address allowlist, and last-used times written in batches. What "no store call"
// means is read from Redis's own MONITOR stream, not inferred from timings.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { admin, createKey } from '../../test/harness/admin.js';
import { startBackend } from '../../test/harness/backend.js';
import { sha256, testConfig } from '../../test/harness/config.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { pollUntil } from '../../test/harness/poll.js';
import { monitorRedis, startRedis, type RedisMonitor, type RedisProcess } from '../../test/harness/redis.js';
import { checkKeyFormat, mintKey } from './key-format.js';

interface Reply { status: number; headers: Record<string, unknown>; json: any }
async function use(gw: GatewayProcess, key: string): Promise<Reply> {
  const res = await request(`${gw.url}/v1/echo`, { headers: { 'x-api-key': key } });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, json: JSON.parse(text) };
}

/** The last character of a minted key's checksum, changed. */
function mistyped(key: string): string {
  const last = key.at(-1)!;
  return key.slice(0, -1) + (last === 'a' ? 'b' : 'a');
}

/** Commands since `from` whose words mention any of `needles`. */
function mentioning(m: RedisMonitor, from: number, to: number, needles: readonly string[]): string[][] {
  return m.commands.slice(from, to).filter((c) => c.some((w) => needles.some((n) => w.includes(n))));
}

describe('API key format', () => {
  it('mints sluice_<env>_ keys whose CRC32 checksum catches any one changed character', () => {
    const key = mintKey('live');
    assert.match(key, /^sluice_live_[0-9A-Za-z]{36}$/);
    assert.equal(checkKeyFormat(key, 'live'), 'ok');
    assert.equal(checkKeyFormat(key, 'test'), 'other_environment');
    assert.equal(checkKeyFormat(mistyped(key), 'live'), 'bad_checksum');
    for (let i = 'sluice_live_'.length; i < key.length; i++) {
      const c = key[i] === 'Z' ? 'Y' : 'Z';
      assert.equal(checkKeyFormat(key.slice(0, i) + c + key.slice(i + 1), 'live'), 'bad_checksum', `character ${i}`);
    }
    // Every other shape is looked up as it is: older sk_ keys, the demo keys, anything.
    for (const other of ['sk_' + 'A'.repeat(32), 'demo-pro', 'sluice_live_short', `${key}x`]) assert.equal(checkKeyFormat(other, 'live'), 'other');
    assert.notEqual(mintKey('live'), mintKey('live'));
  });
});

describe('API key lifecycle', { timeout: 120_000 }, () => {
  let backend: Awaited<ReturnType<typeof startBackend>>;
  let redis: RedisProcess;
  let rc: Redis;
  const gws: Record<'redis' | 'memory', GatewayProcess> = {} as never;
  before(async () => {
    backend = await startBackend();
    redis = await startRedis();
    rc = new Redis(redis.url);
    const base = {
      upstreams: [backend.url],
      keys: [{ digest: sha256('demo-style-key'), customer: 'cfg-co', plan: 'test' }],
      // Refusals must come from the key's own terms, never from an identity that aged out.
      auth: { cache_ttl_ms: 60_000, last_used_flush_ms: 300, rotation_grace_s: 3600 },
    };
    [gws.redis, gws.memory] = await Promise.all([
      spawnGateway(testConfig({ ...base, store: { kind: 'redis', url: redis.url } })),
      spawnGateway(testConfig(base)),
    ]);
  });
  after(async () => {
    await Promise.all([gws.redis?.stop(), gws.memory?.stop()]);
    rc?.disconnect();
    await redis?.stop();
    await backend?.close();
  });

  for (const kind of ['redis', 'memory'] as const) {
    describe(`${kind} store`, () => {
      it('an expired key gets 401, from the moment it expires (its cached identity too)', async () => {
        const gw = gws[kind];
        const expiresAt = Date.now() + 1500;
        const r = await admin(gw.adminUrl, 'POST', '/admin/keys', { customer: `exp-${kind}`, plan: 'test', expires_at: expiresAt });
        assert.equal(r.status, 201, r.text);
        assert.equal(r.body.expires_at, expiresAt);
        assert.equal((await use(gw, r.body.key)).status, 200, 'before its expiry');
        const refused = await pollUntil(async () => {
          const u = await use(gw, r.body.key);
          return u.status === 401 ? { u, at: Date.now() } : undefined;
        }, 10_000, 25);
        assert.ok(refused.value, 'still accepted 10 s later');
        assert.ok(refused.value.at >= expiresAt, `refused ${expiresAt - refused.value.at} ms early`);
        assert.equal(refused.value.u.json.error.code, 'unauthorized');
        assert.match(refused.value.u.json.error.message, /expired/);
        const listed = await admin(gw.adminUrl, 'GET', `/admin/keys?customer=exp-${kind}`);
        assert.equal(listed.body.keys[0].status, 'expired');
      });

      it('rotation: the new key works at once; the old one works through its grace with Deprecation and Sunset, then gets 401', async () => {
        const gw = gws[kind];
        const { key, digest } = await createKey(gw.adminUrl, `rot-${kind}`, 'test');
        const r = await admin(gw.adminUrl, 'POST', `/admin/keys/${digest}/rotate`, { grace_seconds: 2 });
        assert.equal(r.status, 201, r.text);
        const rotatedAt = Date.now();
        assert.equal(r.body.replaces.digest, digest);
        assert.notEqual(r.body.key, key);
        const fresh = await use(gw, r.body.key);
        assert.equal(fresh.status, 200);
        assert.equal(fresh.headers.deprecation, undefined, 'the new key is not deprecated');
        const old = await use(gw, key);
        assert.equal(old.status, 200, 'the old key keeps working during its grace');
        assert.equal(old.json.headers['x-sluice-customer'], `rot-${kind}`);
        // RFC 9745: the moment it was deprecated as @<unix seconds>; RFC 8594: when it stops.
        const deprecatedAt = Number(/^@(\d+)$/.exec(String(old.headers.deprecation))?.[1]) * 1000;
        assert.ok(Math.abs(deprecatedAt - rotatedAt) < 5000, String(old.headers.deprecation));
        assert.equal(old.headers.sunset, new Date(r.body.replaces.grace_until).toUTCString());
        const listed = await admin(gw.adminUrl, 'GET', `/admin/keys?customer=rot-${kind}`);
        const oldView = listed.body.keys.find((k: { digest: string }) => k.digest === digest);
        assert.equal(oldView.status, 'rotated');
        assert.equal(oldView.replaced_by, r.body.digest);
        const again = await admin(gw.adminUrl, 'POST', `/admin/keys/${digest}/rotate`, {});
        assert.equal(again.status, 409, 'a rotated key cannot be rotated again');
        const refused = await pollUntil(async () => ((await use(gw, key)).status === 401 ? Date.now() : undefined), 10_000, 25);
        assert.ok(refused.value !== undefined && refused.value >= r.body.replaces.grace_until, 'refused once the grace has ended, not before');
        assert.match((await use(gw, key)).json.error.message, /rotated/);
        assert.equal((await use(gw, r.body.key)).status, 200, 'the new key is unaffected');
      });

      it('rotation with no grace (a leaked key) refuses the old key on the very next request; a grace above the limit is 400', async () => {
        const gw = gws[kind];
        const { key, digest } = await createKey(gw.adminUrl, `leak-${kind}`, 'test');
        assert.equal((await use(gw, key)).status, 200, 'cached identity');
        assert.equal((await admin(gw.adminUrl, 'POST', `/admin/keys/${digest}/rotate`, { grace_seconds: 3601 })).status, 400);
        const r = await admin(gw.adminUrl, 'POST', `/admin/keys/${digest}/rotate`, { grace_seconds: 0 });
        assert.equal(r.status, 201);
        assert.equal((await use(gw, key)).status, 401);
        assert.equal((await use(gw, r.body.key)).status, 200);
      });

      it('a checksum-invalid or other-environment key is 401 naming why; older key shapes keep working', async () => {
        const gw = gws[kind];
        const { key } = await createKey(gw.adminUrl, `fmt-${kind}`, 'test');
        const bad = await use(gw, mistyped(key));
        assert.equal(bad.status, 401);
        assert.match(bad.json.error.message, /checksum/);
        const test = await use(gw, mintKey('test'));
        assert.equal(test.status, 401);
        assert.match(test.json.error.message, /another environment/);
        assert.equal((await use(gw, 'demo-style-key')).status, 200, 'a config key of any shape');
      });

      it('the allowlist: 403 from outside it, 200 from inside, changeable at runtime', async () => {
        const gw = gws[kind];
        const r = await admin(gw.adminUrl, 'POST', '/admin/keys', { customer: `cidr-${kind}`, plan: 'test', allow: ['10.0.0.0/8', '2001:db8::/32'] });
        assert.equal(r.status, 201, r.text);
        const refused = await use(gw, r.body.key);
        assert.equal(refused.status, 403);
        assert.equal(refused.json.error.code, 'forbidden');
        assert.match(refused.json.error.message, /allowlist/);
        assert.equal(refused.headers['ratelimit'], undefined, 'refused before the limits counted it');
        const patched = await admin(gw.adminUrl, 'PATCH', `/admin/keys/${r.body.digest}`, { allow: ['10.0.0.0/8', '127.0.0.1/32'] });
        assert.equal(patched.status, 200, patched.text);
        assert.equal((await use(gw, r.body.key)).status, 200, 'the change applies from the next request');
        const badCidr = await admin(gw.adminUrl, 'PATCH', `/admin/keys/${r.body.digest}`, { allow: ['10.0.0.0/33'] });
        assert.equal(badCidr.status, 400);
        assert.match(badCidr.body.error.message, /allow: .*prefix length/);
      });

      it('last use is recorded in batches, not on the request path', async () => {
        const gw = gws[kind];
        const { key, digest } = await createKey(gw.adminUrl, `used-${kind}`, 'test');
        const list = async () => (await admin(gw.adminUrl, 'GET', `/admin/keys?customer=used-${kind}`)).body.keys.find((k: { digest: string }) => k.digest === digest);
        assert.equal((await list()).last_used_at, null);
        const sent = Date.now();
        assert.equal((await use(gw, key)).status, 200);
        const seen = await pollUntil(async () => (await list()).last_used_at ?? undefined, 5000, 50);
        assert.ok(seen.value !== undefined && seen.value >= sent - 1000, `last_used_at ${seen.value}`);
      });
    });
  }

  describe('on Redis, refusals that cost no store call (MONITOR)', () => {
    let m: RedisMonitor;
    before(async () => { m = await monitorRedis(redis.url); });
    after(() => m?.close());

    it('a checksum-invalid key: 401 without any lookup; a valid one is looked up (the control)', async () => {
      const gw = gws.redis;
      const { key, digest } = await createKey(gw.adminUrl, 'nolookup', 'test');
      const bad = mistyped(key);
      const from = await m.barrier();
      for (let i = 0; i < 5; i++) assert.equal((await use(gw, bad)).status, 401);
      assert.equal((await use(gw, mintKey('staging'))).status, 401);
      const to = await m.barrier();
      assert.deepEqual(mentioning(m, from, to, [':key:', sha256(bad), '{nolookup}']), [], 'no key lookup, no limit call');
      // The control: the valid key's first request is a lookup MONITOR does see.
      assert.equal((await use(gw, key)).status, 200);
      const after = await m.barrier();
      assert.ok(mentioning(m, to, after, [`:key:${digest}`]).length > 0, 'the lookup of a real key is visible, so its absence above means something');
    });

    it('a key used from outside its allowlist: 403 before the limits (no limit call), and once cached no store call at all', async () => {
      const gw = gws.redis;
      const r = await admin(gw.adminUrl, 'POST', '/admin/keys', { customer: 'walled', plan: 'test', allow: ['192.0.2.0/24'] });
      const from = await m.barrier();
      assert.equal((await use(gw, r.body.key)).status, 403, 'first request: the key is looked up, the limits are not asked');
      const first = await m.barrier();
      assert.deepEqual(mentioning(m, from, first, ['rl:{walled}']), [], 'no limit script ran for the refused request');
      assert.ok(mentioning(m, from, first, [`:key:${r.body.digest}`]).length > 0, 'the key lookup itself is visible');
      for (let i = 0; i < 10; i++) assert.equal((await use(gw, r.body.key)).status, 403);
      const last = await m.barrier();
      assert.deepEqual(mentioning(m, first, last, ['{walled}', r.body.digest]), [], 'ten more refusals: no store call (key, customer or limits)');
      // The control: from inside its allowlist the same key's limits are in the stream.
      await admin(gw.adminUrl, 'PATCH', `/admin/keys/${r.body.digest}`, { allow: ['127.0.0.0/8'] });
      assert.equal((await use(gw, r.body.key)).status, 200);
      assert.ok(mentioning(m, last, await m.barrier(), ['rl:{walled}']).length > 0, 'an admitted request runs the limit script on {walled}');
    });

    it('last-used times: many requests, one write per flush', async () => {
      const gw = gws.redis;
      const { key, digest } = await createKey(gw.adminUrl, 'batched', 'test');
      assert.equal((await use(gw, key)).status, 200);
      await pollUntil(async () => ((await rc.hget(`sluice:key:${digest}`, 'last_used')) ? true : undefined), 5000, 25);
      const from = await m.barrier();
      const started = performance.now();
      await Promise.all(Array.from({ length: 40 }, () => use(gw, key)));
      const elapsed = performance.now() - started;
      const settled = await pollUntil(async () => {
        // The commands sent, not the ones a script runs inside (MONITOR shows both).
        const writes = mentioning(m, from, m.commands.length, [`sluice:key:${digest}`]).filter((c) => /^(evalsha|eval|hset)$/.test(c[0]!));
        return writes.length > 0 ? writes : undefined;
      }, 5000, 25);
      assert.ok(settled.value, 'the batch was written');
      // One write per flush (300 ms) the requests spanned, at most: never one per request.
      const flushes = Math.ceil(elapsed / 300) + 1;
      assert.ok(settled.value.length <= Math.min(flushes, 10), `40 requests over ${Math.round(elapsed)} ms, ${settled.value.length} writes: ${JSON.stringify(settled.value)}`);
    });
  });

  it('behind a trusted proxy (server.real_ip) the allowlist judges the client the proxy reports, never what an untrusted peer claims', async () => {
    const behind = await spawnGateway(testConfig({
      upstreams: [backend.url],
      server: { real_ip: { trusted: ['127.0.0.1/32'], header: 'x-forwarded-for' } },
    }));
    const untrusted = await spawnGateway(testConfig({ upstreams: [backend.url] }));
    try {
      for (const gw of [behind, untrusted]) {
        const r = await admin(gw.adminUrl, 'POST', '/admin/keys', { customer: 'office', plan: 'test', allow: ['203.0.113.0/24'] });
        const from = async (xff?: string): Promise<number> => {
          const res = await request(`${gw.url}/v1/echo`, { headers: { 'x-api-key': r.body.key, ...(xff === undefined ? {} : { 'x-forwarded-for': xff }) } });
          await res.body.dump();
          return res.statusCode;
        };
        if (gw === behind) {
          assert.equal(await from('203.0.113.7'), 200, 'the office, as the trusted proxy reports it');
          assert.equal(await from('198.51.100.1'), 403, 'elsewhere');
          assert.equal(await from(), 403, 'the proxy itself is not the office');
        } else {
          assert.equal(await from('203.0.113.7'), 403, 'an untrusted peer cannot choose its address');
        }
      }
    } finally {
      await Promise.all([behind.stop(), untrusted.stop()]);
    }
  });

  it('an sk_ key stored by an earlier Sluice keeps working', async () => {
    const old = `sk_${'Q'.repeat(32)}`;
    await rc.hset(`sluice:key:${sha256(old)}`, { customer: 'legacy', plan: 'test', label: '', created: 1 });
    const r = await use(gws.redis, old);
    assert.equal(r.status, 200);
    assert.equal(r.json.headers['x-sluice-customer'], 'legacy');
  });
});
