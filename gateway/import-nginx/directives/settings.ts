// Settings that become route or server fields one to one.

import type { DirectiveHandler } from '../table.js';
import { nginxSizeBytes } from './values.js';

export const addHeader: DirectiveHandler = {
  names: ['add_header'],
  levels: ['http', 'server', 'location'],
  handle(d, scope, cx) {
    const list = (scope.s.addHeader ??= []);
    const always = d.args[2] === 'always';
    if (d.args.length < 2 || d.args.length > 3 || (d.args.length === 3 && !always)) return cx.list(scope, d, 'expected: add_header NAME VALUE [always]');
    list.push({ name: d.args[0]!.toLowerCase(), value: d.args[1]!, always, d });
  },
};

export const clientMaxBodySize: DirectiveHandler = {
  names: ['client_max_body_size'],
  levels: ['http', 'server', 'location'],
  handle(d, scope, cx) {
    const n = d.args.length === 1 ? nginxSizeBytes(d.args[0]!) : undefined;
    if (n === undefined) return cx.list(scope, d, 'expected: client_max_body_size SIZE');
    scope.s.maxBodyBytes = n;
    cx.ok();
  },
};

export const defaultType: DirectiveHandler = {
  names: ['default_type'],
  levels: ['http', 'server', 'location'],
  handle(d, scope, cx) {
    if (d.args.length !== 1) return cx.list(scope, d, 'expected: default_type MIME');
    scope.s.defaultType = d.args[0];
    cx.ok();
  },
};

export const realIp: DirectiveHandler = {
  names: ['set_real_ip_from', 'real_ip_header', 'real_ip_recursive'],
  levels: ['http', 'server', 'location'],
  handle(d, scope, cx) {
    const v = d.args[0];
    if (d.args.length !== 1 || v === undefined) return cx.list(scope, d, `expected: ${d.name} VALUE`);
    if (d.name === 'set_real_ip_from') {
      const list = (scope.s.realIpFrom ??= []);
      if (v.startsWith('unix:')) return cx.note(scope, d, 'unix-socket peers: Sluice has no unix listener');
      if (!/^[0-9a-fA-F.:]+(\/\d{1,3})?$/.test(v)) return cx.list(scope, d, `${v}: Sluice trusts addresses and CIDRs only (no host names)`);
      list.push(v.includes('/') ? v : `${v}/${v.includes(':') ? 128 : 32}`);
    } else if (d.name === 'real_ip_header') {
      if (v === 'proxy_protocol') return cx.list(scope, d, 'the PROXY protocol is not supported');
      scope.s.realIpHeader = v.toLowerCase();
    } else {
      if (v !== 'on' && v !== 'off') return cx.list(scope, d, 'expected: real_ip_recursive on|off');
      scope.s.realIpRecursive = v === 'on';
    }
    cx.ok();
  },
};

export const ssl: DirectiveHandler = {
  names: ['ssl_certificate', 'ssl_certificate_key', 'ssl_protocols', 'ssl_ciphers'],
  levels: ['http', 'server'],
  handle(d, scope, cx) {
    if (d.args.length === 0) return cx.list(scope, d, `expected: ${d.name} VALUE`);
    if (d.name === 'ssl_certificate') (scope.s.sslCertificate ??= []).push({ path: d.args[0]!, d });
    else if (d.name === 'ssl_certificate_key') (scope.s.sslCertificateKey ??= []).push({ path: d.args[0]!, d });
    else if (d.name === 'ssl_protocols') {
      scope.s.sslProtocols = [...d.args];
      const old = d.args.filter((p) => p !== 'TLSv1.2' && p !== 'TLSv1.3');
      if (old.length > 0) cx.note(scope, d, `${old.join(' ')}: Sluice accepts TLSv1.2 and later only`);
    } else {
      scope.s.sslCiphers = d.args[0];
      cx.note(scope, d, 'passed to OpenSSL as nginx does (Node uses the same cipher-list syntax)');
    }
    if (d.args[0]!.startsWith('data:') || d.args[0]!.includes('$')) return cx.list(scope, d, 'certificates from variables or inline data are not supported');
    cx.ok();
  },
};

export const include: DirectiveHandler = {
  names: ['include'],
  levels: ['main', 'http', 'server', 'location'],
  handle(d, scope, cx) {
    // Only unreadable includes reach here (the parser splices the readable ones in).
    cx.list(scope, d, `${d.unreadable ?? 'cannot read'}: whatever it holds is not imported (nginx itself would refuse to start)`);
  },
};
