import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  exportJWK, exportPKCS8, exportSPKI, generateKeyPair, importPKCS8, SignJWT, type CryptoKey, type GenerateKeyPairResult, type JWTPayload,
} from 'jose';
import { request } from 'undici';
import { startBackend } from '../../test/harness/backend.js';
import { testConfig } from '../../test/harness/config.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { pollUntil } from '../../test/harness/poll.js';

const ISSUER = 'https://issuer.sluice.test';
const AUDIENCE = 'sluice-api';
const HS_SECRET = 'hs256-shared-secret-of-at-least-32-bytes!';
const PLANS = { test: { rate: 1000, burst: 1000 }, gold: { rate: 1000, burst: 1000 } };

interface Reply { status: number; json: any }

async function call(gw: GatewayProcess, token: string): Promise<Reply> {
  const res = await request(`${gw.url}/v1/echo`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.statusCode, json: await res.body.json() };
}

function assertRefused(r: Reply, what: string): void {
  assert.equal(r.status, 401, `${what}: ${JSON.stringify(r.json)}`);
  assert.equal(r.json.error.code, 'unauthorized', what);
}

const now = (): number => Math.floor(Date.now() / 1000);
const b64url = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');

/** Standard claims the gateway requires, with the customer and plan in the configured claim names. */
function claims(extra: JWTPayload = {}): JWTPayload {
  return { org: 'jwt-co', tier: 'gold', ...extra };
}

async function sign(payload: JWTPayload, alg: string, key: CryptoKey | Uint8Array, opts: { kid?: string; iss?: string | null; aud?: string | null; exp?: number } = {}): Promise<string> {
  let jwt = new SignJWT(payload).setProtectedHeader({ alg, ...(opts.kid === undefined ? {} : { kid: opts.kid }) }).setIssuedAt();
  if (opts.iss !== null) jwt = jwt.setIssuer(opts.iss ?? ISSUER);
  if (opts.aud !== null) jwt = jwt.setAudience(opts.aud ?? AUDIENCE);
  jwt = jwt.setExpirationTime(opts.exp ?? now() + 300);
  return jwt.sign(key);
}

describe('auth: JWT bearer tokens', () => {
  let backend: Awaited<ReturnType<typeof startBackend>>;
  let rsa: GenerateKeyPairResult;
  let ec: GenerateKeyPairResult;
  let rsaPem: string;
  let gw: GatewayProcess;
  const hsKey = new TextEncoder().encode(HS_SECRET);

  before(async () => {
    backend = await startBackend();
    [rsa, ec] = await Promise.all([
      generateKeyPair('RS256', { extractable: true }),
      generateKeyPair('ES256', { extractable: true }),
    ]) as [GenerateKeyPairResult, GenerateKeyPairResult];
    rsaPem = await exportSPKI(rsa.publicKey);
    gw = await spawnGateway(testConfig({
      upstreams: [backend.url],
      plans: PLANS,
      auth: {
        jwt: {
          algorithms: ['HS256', 'RS256', 'ES256'],
          issuer: ISSUER,
          audience: AUDIENCE,
          customer_claim: 'org',
          plan_claim: 'tier',
          // No leeway, so the expiry test below can watch the exact second pass.
          clock_tolerance_s: 0,
          keys: [
            { kid: 'hs', secret: HS_SECRET },
            { kid: 'rs', pem: rsaPem },
            { kid: 'es', pem: await exportSPKI(ec.publicKey) },
          ],
        },
      },
    }));
  });
  after(async () => {
    await gw?.stop();
    await backend?.close();
  });

  it('accepts HS256, RS256 and ES256 and forwards customer and plan from the configured claims', async () => {
    const tokens: [string, string][] = [
      ['HS256', await sign(claims({ org: 'hs-co' }), 'HS256', hsKey, { kid: 'hs' })],
      ['RS256', await sign(claims({ org: 'rs-co' }), 'RS256', rsa.privateKey, { kid: 'rs' })],
      ['ES256', await sign(claims({ org: 'es-co', tier: 'test' }), 'ES256', ec.privateKey, { kid: 'es' })],
      // Without a kid the gateway tries the keys that fit the algorithm.
      ['RS256 without kid', await sign(claims({ org: 'nokid-co' }), 'RS256', rsa.privateKey)],
    ];
    const want: Record<string, [string, string]> = {
      HS256: ['hs-co', 'gold'], RS256: ['rs-co', 'gold'], ES256: ['es-co', 'test'], 'RS256 without kid': ['nokid-co', 'gold'],
    };
    for (const [name, token] of tokens) {
      const r = await call(gw, token);
      assert.equal(r.status, 200, `${name}: ${JSON.stringify(r.json)}`);
      assert.equal(r.json.headers['x-sluice-customer'], want[name]![0], name);
      assert.equal(r.json.headers['x-sluice-plan'], want[name]![1], name);
      assert.equal(r.json.headers.authorization, undefined, `${name}: the token stays at the edge`);
    }
  });

  it('pins the algorithm: other algorithms, HS/RS confusion and alg none are refused', async () => {
    // RS384 and PS256 with the very RSA key the config trusts: right key, unpinned algorithm.
    const rsaPkcs8 = await exportPKCS8(rsa.privateKey);
    for (const alg of ['RS384', 'PS256']) {
      assertRefused(await call(gw, await sign(claims(), alg, await importPKCS8(rsaPkcs8, alg), { kid: 'rs' })), alg);
    }
    assertRefused(await call(gw, await sign(claims(), 'HS384', hsKey, { kid: 'hs' })), 'HS384');
    // The classic confusion: HS256 "signed" with the public RSA key as the HMAC secret.
    const pemAsSecret = new TextEncoder().encode(rsaPem);
    assertRefused(await call(gw, await sign(claims(), 'HS256', pemAsSecret, { kid: 'rs' })), 'HS256 with the RSA PEM, kid rs');
    assertRefused(await call(gw, await sign(claims(), 'HS256', pemAsSecret)), 'HS256 with the RSA PEM, no kid');
    // Unsigned tokens, with and without a (meaningless) signature segment.
    const body = b64url({ ...claims(), iss: ISSUER, aud: AUDIENCE, exp: now() + 300 });
    for (const alg of ['none', 'None', 'NONE']) {
      assertRefused(await call(gw, `${b64url({ alg, typ: 'JWT' })}.${body}.`), `alg ${alg}`);
      assertRefused(await call(gw, `${b64url({ alg, typ: 'JWT' })}.${body}.c2ln`), `alg ${alg} with a signature`);
    }
    // A valid token with one byte of its payload changed.
    const good = await sign(claims(), 'HS256', hsKey, { kid: 'hs' });
    const [h, p, s] = good.split('.');
    const forged = b64url({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), tier: 'gold', org: 'someone-else' });
    assertRefused(await call(gw, `${h}.${forged}.${s}`), 'tampered payload');
    // Signed by a key the gateway does not know.
    const stranger = await generateKeyPair('RS256');
    assertRefused(await call(gw, await sign(claims(), 'RS256', stranger.privateKey, { kid: 'rs' })), 'unknown RSA key');
  });

  it('checks exp, nbf, iss and aud', async () => {
    assertRefused(await call(gw, await sign(claims(), 'HS256', hsKey, { exp: now() - 60 })), 'expired');
    assertRefused(await call(gw, await sign(claims({ nbf: now() + 60 }), 'HS256', hsKey)), 'not yet valid');
    assertRefused(await call(gw, await sign(claims(), 'HS256', hsKey, { iss: 'https://evil.test' })), 'wrong issuer');
    assertRefused(await call(gw, await sign(claims(), 'HS256', hsKey, { iss: null })), 'no issuer');
    assertRefused(await call(gw, await sign(claims(), 'HS256', hsKey, { aud: 'another-api' })), 'wrong audience');
    assertRefused(await call(gw, await sign(claims(), 'HS256', hsKey, { aud: null })), 'no audience');
    // The positive control for the same signer, so the refusals above are about the claims.
    assert.equal((await call(gw, await sign(claims({ nbf: now() - 1 }), 'HS256', hsKey))).status, 200);
  });

  it('refuses a token whose plan claim names no configured plan, or without a customer', async () => {
    assertRefused(await call(gw, await sign(claims({ tier: 'platinum' }), 'HS256', hsKey)), 'unknown plan');
    assertRefused(await call(gw, await sign({ tier: 'gold' }, 'HS256', hsKey)), 'no customer claim');
    assertRefused(await call(gw, await sign(claims({ org: 42 as unknown as string }), 'HS256', hsKey)), 'customer claim not a string');
  });

  it('never serves a cached token past its exp', async (t) => {
    // Two seconds is the shortest lifetime a whole-second exp can guarantee is still ahead.
    const exp = now() + 2;
    const token = await sign(claims({ org: 'short-lived' }), 'HS256', hsKey, { exp });
    assert.equal((await call(gw, token)).status, 200);
    assert.equal((await call(gw, token)).status, 200, 'second use, from the cache');
    const refused = await pollUntil(async () => ((await call(gw, token)).status === 401 ? Date.now() : undefined), 6000, 25);
    assert.notEqual(refused.value, undefined, 'the token was still accepted 6 s later');
    const lateMs = refused.value! - exp * 1000;
    t.diagnostic(`refused ${lateMs} ms after exp`);
    assert.ok(lateMs >= 0, `refused ${-lateMs} ms before its exp`);
    assert.ok(lateMs < 1500, `accepted ${lateMs} ms past its exp (cache_ttl_ms is 60 s)`);
  });

  describe('keys from a JWKS URL', () => {
    let jwks: Server;
    let jwksHits = 0;
    // While false the JWKS endpoint answers 503, like an identity provider mid-outage.
    let jwksUp = true;
    const extraKeys: object[] = [];
    let jwksGw: GatewayProcess;
    let signer: GenerateKeyPairResult;

    before(async () => {
      signer = await generateKeyPair('RS256', { extractable: true }) as GenerateKeyPairResult;
      const jwk = { ...await exportJWK(signer.publicKey), kid: 'jwks-1', alg: 'RS256', use: 'sig' };
      jwks = createServer((_req, res) => {
        jwksHits++;
        if (!jwksUp) {
          res.writeHead(503, { 'content-type': 'text/plain' });
          res.end('down');
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ keys: [jwk, ...extraKeys] }));
      });
      await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
      jwksGw = await spawnGateway(testConfig({
        upstreams: [backend.url],
        plans: PLANS,
        auth: {
          jwt: {
            algorithms: ['RS256'],
            issuer: ISSUER,
            audience: AUDIENCE,
            customer_claim: 'org',
            plan_claim: 'tier',
            jwks_url: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`,
          },
        },
      }));
    });
    after(async () => {
      await jwksGw?.stop();
      await new Promise<void>((resolve) => { jwks.close(() => resolve()); jwks.closeAllConnections(); });
    });

    it('verifies tokens with the published key and refuses others', async () => {
      const ok = await call(jwksGw, await sign(claims({ org: 'jwks-co' }), 'RS256', signer.privateKey, { kid: 'jwks-1' }));
      assert.equal(ok.status, 200, JSON.stringify(ok.json));
      assert.equal(ok.json.headers['x-sluice-customer'], 'jwks-co');
      assert.equal(ok.json.headers['x-sluice-plan'], 'gold');
      assert.ok(jwksHits >= 1, 'the gateway fetched the JWKS');

      const impostor = await generateKeyPair('RS256');
      assertRefused(await call(jwksGw, await sign(claims(), 'RS256', impostor.privateKey, { kid: 'jwks-1' })), 'same kid, other key');
      assertRefused(await call(jwksGw, await sign(claims(), 'HS256', new TextEncoder().encode(HS_SECRET))), 'HS256 on an RS256-only gateway');
      assertRefused(await call(jwksGw, await sign(claims(), 'RS256', signer.privateKey, { kid: 'jwks-1', exp: now() - 60 })), 'expired');
    });

    it('answers 503 (not 401) while the JWKS cannot be fetched, and caches no refusal', async () => {
      // A kid the gateway has not seen makes it fetch the JWKS again.
      const rotated = await generateKeyPair('RS256', { extractable: true }) as GenerateKeyPairResult;
      const token = await sign(claims({ org: 'rotated-co' }), 'RS256', rotated.privateKey, { kid: 'jwks-2' });
      const outageGw = await spawnGateway(testConfig({
        upstreams: [backend.url],
        plans: PLANS,
        auth: {
          negative_cache_ttl_ms: 60_000,
          jwt: { algorithms: ['RS256'], customer_claim: 'org', plan_claim: 'tier', jwks_url: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks` },
        },
      }));
      try {
        jwksUp = false;
        const during = await call(outageGw, token);
        assert.equal(during.status, 503, `a valid token during a JWKS outage: ${JSON.stringify(during.json)}`);
        assert.equal(during.json.error.code, 'unavailable');
        jwksUp = true;
        // Publish the rotated key; the same token must now pass at once, not after the negative TTL.
        const jwk2 = { ...await exportJWK(rotated.publicKey), kid: 'jwks-2', alg: 'RS256', use: 'sig' };
        extraKeys.push(jwk2);
        const afterOutage = await call(outageGw, token);
        assert.equal(afterOutage.status, 200, JSON.stringify(afterOutage.json));
        assert.equal(afterOutage.json.headers['x-sluice-customer'], 'rotated-co');
      } finally {
        jwksUp = true;
        await outageGw.stop();
      }
    });
  });
});
