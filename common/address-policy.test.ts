import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isForbiddenAddress, parseCidr, parseIp } from './address-policy.js';

const FORBIDDEN: readonly [string, string][] = [
  ['127.0.0.1', 'loopback'],
  ['127.255.255.254', 'loopback, top of /8'],
  ['0.0.0.0', 'this network'],
  ['0.1.2.3', 'this network /8'],
  ['10.0.0.1', 'RFC1918 10/8'],
  ['10.255.255.255', 'RFC1918 10/8 top'],
  ['172.16.0.1', 'RFC1918 172.16/12 bottom'],
  ['172.31.255.255', 'RFC1918 172.16/12 top'],
  ['192.168.1.1', 'RFC1918 192.168/16'],
  ['100.64.0.1', 'CGNAT bottom'],
  ['100.127.255.255', 'CGNAT top'],
  ['169.254.169.254', 'cloud metadata'],
  ['169.254.0.1', 'link-local'],
  ['192.0.0.170', 'NAT64 discovery (IETF assignments)'],
  ['192.0.2.10', 'TEST-NET-1'],
  ['198.51.100.7', 'TEST-NET-2'],
  ['203.0.113.9', 'TEST-NET-3'],
  ['198.18.0.1', 'benchmarking'],
  ['198.19.255.255', 'benchmarking top'],
  ['192.88.99.1', '6to4 relay anycast'],
  ['224.0.0.1', 'multicast'],
  ['239.255.255.250', 'multicast SSDP'],
  ['240.0.0.1', 'reserved'],
  ['255.255.255.255', 'broadcast'],
  ['::1', 'IPv6 loopback'],
  ['0:0:0:0:0:0:0:1', 'IPv6 loopback, long form'],
  ['::', 'IPv6 unspecified'],
  ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
  ['::ffff:7f00:1', 'IPv4-mapped loopback, hex form'],
  ['::ffff:10.1.2.3', 'IPv4-mapped private'],
  ['::ffff:169.254.169.254', 'IPv4-mapped metadata'],
  ['0:0:0:0:0:ffff:192.168.0.1', 'IPv4-mapped long form'],
  ['::127.0.0.1', 'IPv4-compatible (deprecated)'],
  ['::8.8.8.8', 'IPv4-compatible of a public address'],
  ['64:ff9b::7f00:1', 'NAT64 WKP embedding loopback'],
  ['64:ff9b::8.8.8.8', 'NAT64 WKP embedding public'],
  ['64:ff9b:1::1', 'NAT64 local-use'],
  ['100::1', 'discard-only'],
  ['fe80::1', 'link-local'],
  ['fe80::1%eth0', 'link-local with zone'],
  ['febf:ffff::1', 'link-local top of /10'],
  ['fec0::1', 'site-local'],
  ['fc00::1', 'unique-local fc'],
  ['fd12:3456:789a::1', 'unique-local fd'],
  ['ff02::1', 'multicast all-nodes'],
  ['ff05::1:3', 'multicast site'],
  ['2001:db8::1', 'documentation'],
  ['3fff::1', 'documentation RFC 9637'],
  ['2001::1', 'Teredo'],
  ['2001:2::1', 'benchmarking'],
  ['2002:7f00:1::1', '6to4 embedding loopback'],
  ['5f00::1', 'SRv6'],
  ['4000::1', 'outside global unicast'],
  ['[::1]', 'bracketed loopback'],
  ['localhost', 'not an IP: fail closed'],
  ['', 'empty'],
  ['2130706433', 'decimal integer form is not an address literal'],
  ['127.1', 'short form is not an address literal'],
  ['1.2.3.4.5', 'garbage'],
];

const ALLOWED: readonly [string, string][] = [
  ['8.8.8.8', 'public v4'],
  ['1.1.1.1', 'public v4'],
  ['93.184.215.14', 'public v4'],
  ['172.15.255.255', 'just below 172.16/12'],
  ['172.32.0.0', 'just above 172.16/12'],
  ['100.63.255.255', 'just below CGNAT'],
  ['100.128.0.0', 'just above CGNAT'],
  ['169.253.255.255', 'just below link-local'],
  ['192.169.0.1', 'just above 192.168/16'],
  ['11.0.0.1', 'just above 10/8'],
  ['223.255.255.255', 'just below multicast'],
  ['::ffff:8.8.8.8', 'IPv4-mapped public'],
  ['2606:4700:4700::1111', 'public v6'],
  ['2a00:1450:4001:80b::200e', 'public v6'],
  ['2001:200::1', 'just above 2001::/23'],
];

test('forbidden addresses are forbidden with an empty allow-list', () => {
  for (const [ip, why] of FORBIDDEN) {
    assert.equal(isForbiddenAddress(ip, []), true, `${ip} (${why}) should be forbidden`);
  }
});

test('public addresses are allowed', () => {
  for (const [ip, why] of ALLOWED) {
    assert.equal(isForbiddenAddress(ip, []), false, `${ip} (${why}) should be allowed`);
  }
});

test('the allow-list overrides, exactly to its CIDR', () => {
  const allow = ['127.0.0.1'];
  assert.equal(isForbiddenAddress('127.0.0.1', allow), false);
  assert.equal(isForbiddenAddress('::ffff:127.0.0.1', allow), false, 'mapped form of an allowed v4');
  assert.equal(isForbiddenAddress('127.0.0.2', allow), true);
  assert.equal(isForbiddenAddress('::1', allow), true, 'v4 allow does not open v6 loopback');
  assert.equal(isForbiddenAddress('10.0.0.1', allow), true);

  const cidrs = ['10.1.0.0/16', 'fd00::/8'];
  assert.equal(isForbiddenAddress('10.1.200.3', cidrs), false);
  assert.equal(isForbiddenAddress('10.2.0.1', cidrs), true);
  assert.equal(isForbiddenAddress('fd00::5', cidrs), false);
  assert.equal(isForbiddenAddress('fc00::5', cidrs), true);
  assert.equal(isForbiddenAddress('::1', ['::1/128']), false);
  assert.equal(isForbiddenAddress('::ffff:127.0.0.1', ['::ffff:127.0.0.1']), false, 'v6 entry for a mapped address');
  assert.equal(isForbiddenAddress('169.254.169.254', ['169.254.128.0/17']), false);
  assert.equal(isForbiddenAddress('169.254.169.254', ['169.254.0.0/17']), true);
  assert.equal(isForbiddenAddress('not-an-ip', ['0.0.0.0/0']), true, 'garbage stays forbidden');
});

test('odd prefix lengths match bit-exactly', () => {
  const allow = ['192.168.1.64/27']; // .64 - .95
  assert.equal(isForbiddenAddress('192.168.1.63', allow), true);
  assert.equal(isForbiddenAddress('192.168.1.64', allow), false);
  assert.equal(isForbiddenAddress('192.168.1.95', allow), false);
  assert.equal(isForbiddenAddress('192.168.1.96', allow), true);
});

test('parseCidr rejects garbage so bad config fails loudly', () => {
  for (const bad of ['', 'abc', '10.0.0.0/33', '10.0.0.0/-1', '10.0.0.0/x', '::/129', '10.0.0/8']) {
    assert.throws(() => parseCidr(bad), Error, bad);
  }
  assert.deepEqual(parseCidr('10.0.0.0/8').prefix, 8);
  assert.deepEqual(parseCidr('::1').prefix, 128);
});

test('parseIp handles IPv6 compression and embedded IPv4', () => {
  assert.deepEqual([...parseIp('::ffff:1.2.3.4')!.bytes], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 1, 2, 3, 4]);
  assert.deepEqual([...parseIp('1::')!.bytes], [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...parseIp('1:2:3:4:5:6:7:8')!.bytes], [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]);
  assert.deepEqual([...parseIp('fe80::1%lo0')!.bytes].slice(0, 2), [0xfe, 0x80]);
  assert.equal(parseIp('1:2:3:4:5:6:7:8:9'), undefined);
});
