import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { parseConfig } from '../config/load.js';
import { compileAccess } from '../route/access.js';
import { formatIp, parseCidr, parseIp } from './ip-address.js';
import { clientAddressResolver } from './real-ip.js';

// nginx's realip module (set_real_ip_from, real_ip_header, real_ip_recursive), decided on
// requests made of plain data: which address a request is taken to come from.

function resolverFor(serverYaml: string): (peer: string, headers?: Record<string, string>) => string {
  const cfg = parseConfig(`server:\n${serverYaml}\nplans: { free: { rate: 5 } }\nupstreams: { main: { targets: [http://127.0.0.1:7001] } }\nroutes: [{ prefix: /, upstream: main }]\n`);
  const resolve = clientAddressResolver(cfg.server);
  return (peer, headers = {}) => {
    const ctx = { req: { socket: { remoteAddress: peer }, headers } as unknown as IncomingMessage, clientAddress: '', peerTrusted: false };
    resolve(ctx);
    return ctx.clientAddress;
  };
}

describe('client address: server.real_ip', () => {
  const xff = resolverFor(`  real_ip: { trusted: [10.0.0.0/8, '2001:db8::/32'], header: X-Forwarded-For }`);
  const recursive = resolverFor(`  real_ip: { trusted: [10.0.0.0/8, '2001:db8::/32'], header: x-forwarded-for, recursive: true }`);

  it('is the peer when the peer is not trusted, whatever it sends', () => {
    assert.equal(xff('203.0.113.9', { 'x-forwarded-for': '1.2.3.4' }), '203.0.113.9');
    assert.equal(xff('::ffff:203.0.113.9', { 'x-forwarded-for': '1.2.3.4' }), '203.0.113.9', 'a v4-mapped peer shows as v4');
    assert.equal(xff('2001:db9::1', { 'x-forwarded-for': '1.2.3.4' }), '2001:db9::1');
  });

  it('from a trusted peer, the last entry (what that proxy saw), v4 or v6', () => {
    assert.equal(xff('10.1.2.3', { 'x-forwarded-for': '9.9.9.9, 1.2.3.4' }), '1.2.3.4');
    assert.equal(xff('2001:db8::7', { 'x-forwarded-for': '2001:DB8:0:0::0:1' }), '2001:db8::1', 'printed in RFC 5952 form');
    assert.equal(xff('10.1.2.3', { 'x-forwarded-for': '[2001:db8::5]:4711' }), '2001:db8::5', 'a port is dropped');
    assert.equal(xff('10.1.2.3', { 'x-forwarded-for': '1.2.3.4:80' }), '1.2.3.4');
    assert.equal(xff('10.1.2.3'), '10.1.2.3', 'no header: the peer');
  });

  it('recursive: skips trusted entries from the right, the first untrusted one is the client', () => {
    assert.equal(recursive('10.1.2.3', { 'x-forwarded-for': '6.6.6.6, 1.2.3.4, 10.9.9.9, 2001:db8::2' }), '1.2.3.4');
    assert.equal(recursive('10.1.2.3', { 'x-forwarded-for': '10.0.0.1, 10.0.0.2' }), '10.0.0.1', 'all trusted: the leftmost');
    assert.equal(xff('10.1.2.3', { 'x-forwarded-for': '1.2.3.4, 10.9.9.9' }), '10.9.9.9', 'not recursive: one hop only');
  });

  it('an entry that is no address ends the walk; the last good one stands', () => {
    assert.equal(recursive('10.1.2.3', { 'x-forwarded-for': '1.2.3.4, junk, 10.0.0.5' }), '10.0.0.5');
    assert.equal(xff('10.1.2.3', { 'x-forwarded-for': 'unknown' }), '10.1.2.3');
    assert.equal(xff('10.1.2.3', { 'x-forwarded-for': '999.1.1.1' }), '10.1.2.3');
  });

  it('another header holds one address (X-Real-IP)', () => {
    const real = resolverFor(`  real_ip: { trusted: [127.0.0.1], header: X-Real-IP }`);
    assert.equal(real('127.0.0.1', { 'x-real-ip': '198.51.100.7', 'x-forwarded-for': '1.1.1.1' }), '198.51.100.7');
    assert.equal(real('127.0.0.2', { 'x-real-ip': '198.51.100.7' }), '127.0.0.2');
  });

  it('trust_forwarded is real_ip with every peer trusted and X-Forwarded-For, one hop', () => {
    const tf = resolverFor('  trust_forwarded: true');
    assert.equal(tf('203.0.113.9', { 'x-forwarded-for': '9.9.9.9, 1.2.3.4' }), '1.2.3.4');
    assert.equal(tf('::1', { 'x-forwarded-for': '1.2.3.4' }), '1.2.3.4');
    const off = resolverFor('  trust_forwarded: false');
    assert.equal(off('203.0.113.9', { 'x-forwarded-for': '1.2.3.4' }), '203.0.113.9');
  });
});

describe('addresses and CIDR blocks', () => {
  it('parses and prints v4 and v6 as nginx prints $remote_addr', () => {
    for (const [text, printed] of [['1.2.3.4', '1.2.3.4'], ['::1', '::1'], ['::ffff:1.2.3.4', '1.2.3.4'], ['2001:0db8:0000:0000:0001:0000:0000:0001', '2001:db8::1:0:0:1'],
      ['fe80::', 'fe80::'], ['::', '::'], ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'], ['2001:db8::0:1', '2001:db8::1']]) {
      assert.equal(formatIp(parseIp(text!)!), printed, text);
    }
    for (const bad of ['1.2.3', '1.2.3.256', '01.2.3.4', '1::2::3', 'abc', '', '1:2:3:4:5:6:7:8:9', '12345::']) assert.equal(parseIp(bad), undefined, bad);
  });

  it('allow/deny: first match wins, none means allowed, v4 and v6 blocks, all', () => {
    const check = compileAccess([{ allow: '10.1.0.0/16' }, { deny: '10.0.0.0/8' }, { allow: '2001:db8::/32' }, { deny: '::/0' }, { allow: 'all' }]);
    assert.equal(check('10.1.2.3'), true);
    assert.equal(check('10.2.0.1'), false);
    assert.equal(check('2001:db8:1::9'), true);
    assert.equal(check('2001:db9::9'), false);
    assert.equal(check('192.0.2.1'), true, '::/0 covers v6 only; all covers both');
    assert.equal(compileAccess([{ deny: '192.0.2.0/24' }])('192.0.2.200'), false);
    assert.equal(compileAccess([{ deny: '192.0.2.0/24' }])('192.0.3.1'), true, 'no rule covers it: allowed');
    assert.equal(compileAccess([{ deny: 'all' }])('unix-socket'), false, 'an address that is no IP is covered by all only');
  });

  it('refuses a block with host bits set, as a likely typo', () => {
    assert.match(String(parseCidr('10.1.2.3/8')), /did you mean 10\.0\.0\.0\/8/);
    assert.match(String(parseCidr('2001:db8::1/32')), /did you mean 2001:db8::\/32/);
    assert.deepEqual(typeof parseCidr('10.1.2.3'), 'object', 'an address alone is a /32');
  });
});
