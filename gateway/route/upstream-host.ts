import type { RequestContext } from '../pipeline/context.js';
import { compileTemplate, type Template } from './template.js';

// The Host an upstream sees (a route's `host`):
//  - client (the default): the Host the client sent, as sent (nginx configs say
//    `proxy_set_header Host $host` or `$http_host` for this; Envoy keeps it by default);
//  - upstream: the target's host:port (nginx's default, $proxy_host);
//  - anything else: that name, which may use the template variables (`$host` is the
//    client's without its port, as nginx's $host).
// undefined means "let the HTTP client write the target's".

export type UpstreamHost = (ctx: RequestContext) => string | undefined;

const client: UpstreamHost = (ctx) => ctx.req.headers.host;
const upstream: UpstreamHost = () => undefined;

export function compileUpstreamHost(policy: string | undefined): UpstreamHost {
  if (policy === undefined || policy === 'client') return client;
  if (policy === 'upstream') return upstream;
  const t = compileTemplate(policy, 'header') as Template;
  return (ctx) => t.render(ctx) || undefined;
}
