// proxy_pass and the proxy_* settings that shape the request sent upstream. What they
// mean together (the upstream, the path rewrite, the Host, the WebSocket idiom) is worked
// out per location in build-route.ts; here each records what it says.

import type { DirectiveHandler } from '../table.js';
import { nginxTimeMs } from './values.js';

export const proxyPass: DirectiveHandler = {
  names: ['proxy_pass'],
  levels: ['location'],
  handle(d, scope, cx) {
    if (d.args.length !== 1) return cx.block(scope, d, 'expected: proxy_pass URL');
    // `set $up http://svc:8080; proxy_pass $up;` is a constant in disguise: resolved in
    // build-route.ts, where every `set` of the server and location is known.
    scope.own.proxyPass = { url: d.args[0]!, d };
  },
};

export const proxySetHeader: DirectiveHandler = {
  names: ['proxy_set_header'],
  levels: ['http', 'server', 'location'],
  handle(d, scope, cx) {
    const list = (scope.s.proxySetHeader ??= []);
    if (d.args.length !== 2) return cx.list(scope, d, 'expected: proxy_set_header NAME VALUE');
    list.push({ name: d.args[0]!.toLowerCase(), value: d.args[1]!, d });
    // Counted (or reported) where a route uses it: one level's headers may be used by many.
  },
};

export const proxyHideHeader: DirectiveHandler = {
  names: ['proxy_hide_header'],
  levels: ['http', 'server', 'location'],
  handle(d, scope, cx) {
    if (d.args.length !== 1) return cx.list(scope, d, 'expected: proxy_hide_header NAME');
    (scope.s.proxyHideHeader ??= []).push(d.args[0]!.toLowerCase());
    cx.ok();
  },
};

export const proxyHttpVersion: DirectiveHandler = {
  names: ['proxy_http_version'],
  levels: ['http', 'server', 'location'],
  handle(d, scope, cx) {
    scope.s.proxyHttpVersion = d.args[0];
    if (d.args[0] === '1.1') { cx.ok(); return; }
    cx.list(scope, d, 'Sluice always speaks HTTP/1.1 with keep-alive to upstreams');
  },
};

export const proxyTimeouts: DirectiveHandler = {
  names: ['proxy_connect_timeout', 'proxy_read_timeout', 'proxy_send_timeout'],
  levels: ['http', 'server', 'location'],
  handle(d, scope, cx) {
    const ms = d.args.length === 1 ? nginxTimeMs(d.args[0]!) : undefined;
    if (ms === undefined || ms < 1) return cx.list(scope, d, 'expected: a time (e.g. 30s)');
    if (d.name === 'proxy_connect_timeout') scope.s.connectTimeoutMs = ms;
    else if (d.name === 'proxy_read_timeout') scope.s.readTimeoutMs = ms;
    else scope.s.sendTimeoutMs = ms;
    cx.ok();
    if (d.name === 'proxy_read_timeout') cx.note(scope, d, 'nginx times each read of the answer; Sluice times the answer head (timeouts.headers_ms) and each gap in the body (timeouts.body_ms): both are set');
    if (d.name === 'proxy_send_timeout') cx.note(scope, d, 'nginx times each write of the request to the upstream; Sluice has no separate send timeout (body_ms covers the answer only)');
  },
};
