import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { RequestContext } from '../pipeline/context.js';
import { compileTemplate, type Template } from './template.js';

// The template variables, each read from a request made of plain data.

function ctxFor(o: { url: string; encrypted?: boolean; headers?: Record<string, string | string[]> }): RequestContext {
  const req = {
    url: o.url, method: 'GET', headers: o.headers ?? {},
    socket: { localPort: 8443, remoteAddress: '::ffff:192.0.2.10', ...(o.encrypted === true ? { encrypted: true } : {}) },
  } as unknown as IncomingMessage;
  const ctx = new RequestContext(req, {} as ServerResponse, 'req-1', o.url.split('?')[0]!, 0);
  const q = o.url.indexOf('?');
  ctx.uri = decodeURIComponent(o.url.slice(0, q === -1 ? undefined : q));
  ctx.query = q === -1 ? undefined : o.url.slice(q + 1);
  ctx.host = 'api.example.com';
  ctx.clientAddress = '203.0.113.7';
  return ctx;
}

const render = (text: string, ctx: RequestContext, mode: 'text' | 'header' | 'uri' = 'text', captures?: string[]): string =>
  (compileTemplate(text, mode) as Template).render(ctx, captures);

describe('route templates: the variables', () => {
  it('reads each variable as nginx names it', () => {
    const ctx = ctxFor({ url: '/a%20b/c?x=1&y=2', encrypted: true, headers: { 'user-agent': 'curl/8', 'x-forwarded-for': '10.0.0.1' } });
    assert.equal(render('$scheme://$host:$server_port', ctx), 'https://api.example.com:8443');
    assert.equal(render('$request_uri', ctx), '/a%20b/c?x=1&y=2');
    assert.equal(render('$uri', ctx), '/a b/c');
    assert.equal(render('$uri', ctx, 'uri'), '/a%20b/c', 'escaped where it goes into a URI');
    assert.equal(render('$uri$is_args$args', ctx), '/a b/c?x=1&y=2');
    assert.equal(render('$remote_addr $request_id', ctx), '203.0.113.7 req-1');
    assert.equal(render('$http_user_agent|$http_x_missing|', ctx), 'curl/8||');
    assert.equal(render('$proxy_add_x_forwarded_for', ctx), '10.0.0.1, 192.0.2.10', 'the peer, v4-mapped shown as v4');
    assert.equal(render('/img/$1.$2', ctx, 'text', ['/img/7.png', '7', 'png']), '/img/7.png');
  });

  it('without a query: $is_args and $args are empty; an empty query counts as none', () => {
    assert.equal(render('[$is_args$args]', ctxFor({ url: '/x' })), '[]');
    assert.equal(render('[$is_args$args]', ctxFor({ url: '/x?' })), '[]');
    assert.equal(render('$scheme', ctxFor({ url: '/x' })), 'http');
  });

  it('keeps a $ that starts no name, and refuses an unknown name', () => {
    assert.equal(render('cost: 5$ or $$', ctxFor({ url: '/' })), 'cost: 5$ or $$');
    assert.match(String(compileTemplate('$hostname')), /unknown variable \$hostname/);
    assert.equal((compileTemplate('plain') as Template).constant, true);
    assert.equal((compileTemplate('$3 and $1') as Template).maxCapture, 3);
  });

  it('writes control characters as %XX in a header value', () => {
    const ctx = ctxFor({ url: '/a%0d%0ab' });
    assert.equal(render('x-$uri', ctx, 'header'), 'x-/a%0D%0Ab');
  });
});
