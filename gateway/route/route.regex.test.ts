import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startBackend } from '../../test/harness/backend.js';
import { testConfig } from '../../test/harness/config.js';
import { sendExact } from '../../test/harness/exact-path.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { compileRegex, foldCase, groupCount } from './regex.js';

// Route regexes compile once, at config load, for V8's backtracking engine with the
// switch to its linear-time engine on excessive backtracking (regex.ts): a pathological
// pattern costs a bounded amount of work, never a stalled event loop.

const PATHOLOGICAL = `/${'a'.repeat(50)}!`;

describe('route regexes: compiled for the linear-time fallback', () => {
  it('finishes (a+)+$ against 50 a\'s and a ! at once, case-sensitive or not', () => {
    // With plain backtracking either would run for hours (2^50 ways to split the a's);
    // the fallback makes each a bounded amount of work, so this test simply finishes.
    assert.equal((compileRegex('(a+)+$') as RegExp).test(PATHOLOGICAL), false);
    assert.equal((compileRegex('(a+)+$', { caseInsensitive: true }) as RegExp).test(PATHOLOGICAL.toUpperCase()), false);
    assert.equal((compileRegex('^/(a|aa)+$') as RegExp).test(PATHOLOGICAL), false);
    assert.equal((compileRegex('(x+x+)+y', { caseInsensitive: true }) as RegExp).test('x'.repeat(40)), false);
  });

  it('refuses what the linear engine cannot run: backreferences and lookahead', () => {
    for (const p of ['(a)\\1', '(?=a)b', '(?!a)b', '(?<n>a)\\k<n>']) {
      assert.match(String(compileRegex(p)), /cannot run in linear time/, p);
    }
    assert.match(String(compileRegex('(a')), /is not a valid regex \(Unterminated group\)/);
  });

  it('is case-insensitive by folding ASCII letters into classes, escapes and names untouched', () => {
    assert.equal(foldCase('\\.php$'), '\\.[pP][hH][pP]$');
    assert.equal(foldCase('[a-f0-9]{2,3}'), '[a-f0-9A-F]{2,3}');
    assert.equal(foldCase('\\x41\\d\\w+\\u00e9\\p{L}'), '\\x41\\d\\w+\\u00e9\\p{L}');
    assert.equal(foldCase('(?<ext>png)(?:x)'), '(?<ext>[pP][nN][gG])(?:[xX])');
    assert.equal(foldCase('[^A-Z_]'), '[^A-Z_a-z]');
    const re = compileRegex('^/Img/(\\w+)\\.(PNG|jpg)$', { caseInsensitive: true }) as RegExp;
    assert.deepEqual([...re.exec('/IMG/Cat.png')!].slice(1), ['Cat', 'png'], 'captures keep the path\'s own case');
    assert.equal(re.test('/img/a.gif'), false);
  });

  it('takes nginx\'s PCRE spellings (?P<name>) and a leading (?i)', () => {
    const re = compileRegex('(?i)^/(?P<id>\\d+)/X$') as RegExp;
    assert.equal(re.exec('/42/x')?.groups?.id, '42');
    assert.equal(groupCount(re), 1);
  });

  it('matches the path\'s bytes for characters past ASCII, as nginx (PCRE without UTF) does', () => {
    const re = compileRegex('^/caf\u00e9$') as RegExp;
    assert.equal(re.test('/caf\u00c3\u00a9'), true, '/caf%C3%A9 decoded one character per byte');
  });
});

describe('route regexes: a pathological request does not stall the gateway', () => {
  let backend: Awaited<ReturnType<typeof startBackend>>;
  let gw: GatewayProcess;

  before(async () => {
    backend = await startBackend();
    const cfg = testConfig({ upstreams: [backend.url] });
    cfg.routes = [
      { name: 'evil', regex: '(a+)+$', upstream: 'main', public: true },
      { name: 'evil-ci', regex: '^/(A|AA)+\\.x$', case_insensitive: true, upstream: 'main', public: true },
      { name: 'header', prefix: '/h/', headers: [{ name: 'x-probe', regex: '^(b+)+$' }], return: { status: 204 } },
      { name: 'fallback', prefix: '/', return: { status: 200, body: 'fallback' } },
    ];
    gw = await spawnGateway(cfg);
  });
  after(async () => { await gw.stop(); await backend.close(); });

  it('answers every pathological request, and the requests beside them', async () => {
    const probes = [
      sendExact(gw.port, PATHOLOGICAL),
      sendExact(gw.port, `/${'aA'.repeat(30)}!.x`),
      sendExact(gw.port, '/h/x', { headers: { 'x-probe': `${'b'.repeat(60)}!` } }),
      sendExact(gw.port, '/plain'),
    ];
    const [a, b, c, d] = await Promise.all(probes);
    assert.equal(a!.body, 'fallback', 'no match after the bounded search');
    assert.equal(b!.body, 'fallback');
    assert.equal(c!.body, 'fallback');
    assert.equal(d!.body, 'fallback');
    const match = await sendExact(gw.port, '/aaaa');
    assert.equal(match.status, 200);
    assert.match(match.body, /"backend"/, 'the pattern still matches what it should');
  });
});
