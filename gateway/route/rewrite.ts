import type { RouteConfig } from '../config/types.js';
import type { RequestContext } from '../pipeline/context.js';
import { compileRegex } from './regex.js';
import { compileTemplate, type Template } from './template.js';
import { escapeUri } from './uri-escape.js';

// The path sent upstream when a route rewrites it. Each form starts from the normalised
// path ($uri) and writes the result back as nginx 1.22 does: the part taken from $uri is
// escaped (uri-escape.ts) when the client's path had any %-escape (nginx's quoted_uri),
// and the client's query string follows a `?` when it is not empty.
//  - replace_prefix: nginx `proxy_pass http://svc/new/;` in `location /old/`: the route's
//    prefix (or exact path) is replaced. A nested route that inherits the rewrite replaces
//    the prefix of the route that wrote it, so nesting never changes the forwarded path.
//  - strip_prefix: the prefix removed; what is left gets a leading / if it lacks one.
//  - regex + replacement: nginx `rewrite RE REPLACEMENT break;`: $1..$9 are RE's captures
//    (decoded text); a path RE does not match is forwarded as if there were no rewrite. A
//    `?` in the replacement starts new arguments, the client's follow after `&`.

/** The request target to send upstream (path and query). */
export type PathRewrite = (ctx: RequestContext) => string;

type RewriteConfig = NonNullable<RouteConfig['rewrite']>;

export function compileRewrite(rw: RewriteConfig, base: string | undefined): PathRewrite {
  if (rw.regex !== undefined) {
    const re = compileRegex(rw.regex) as RegExp;
    const replacement = compileTemplate(rw.replacement!, 'text') as Template;
    return (ctx) => {
      const m = re.exec(ctx.uri);
      if (m === null) return ctx.forwardPath;
      const out = replacement.render(ctx, m);
      const q = out.indexOf('?');
      if (q === -1) return withQuery(ctx, escaped(ctx, out));
      const args = out.slice(q + 1);
      const query = ctx.query !== undefined && ctx.query !== '' ? (args === '' ? ctx.query : `${args}&${ctx.query}`) : args;
      return `${escaped(ctx, out.slice(0, q))}${query === '' ? '' : `?${query}`}`;
    };
  }
  const b = base!;
  if (rw.strip_prefix === true) {
    return (ctx) => {
      const rest = escaped(ctx, ctx.uri.slice(b.length));
      return withQuery(ctx, rest.charCodeAt(0) === 47 ? rest : `/${rest}`);
    };
  }
  const to = rw.replace_prefix!;
  return (ctx) => withQuery(ctx, to + escaped(ctx, ctx.uri.slice(b.length)));
}

function escaped(ctx: RequestContext, decoded: string): string {
  return ctx.path.indexOf('%') === -1 ? decoded : escapeUri(decoded);
}

function withQuery(ctx: RequestContext, path: string): string {
  return ctx.query === undefined || ctx.query === '' ? path : `${path}?${ctx.query}`;
}

/** Why a rewrite cannot be used on this route, or undefined. */
export function rewriteProblem(rw: Partial<RewriteConfig>, route: { prefix?: string; exact?: string; regex?: string }): string | undefined {
  const forms = [rw.replace_prefix !== undefined, rw.strip_prefix === true, rw.regex !== undefined].filter(Boolean).length;
  if (forms !== 1) return 'give exactly one of replace_prefix, strip_prefix: true, or regex with replacement';
  if ((rw.regex === undefined) !== (rw.replacement === undefined)) return 'regex and replacement go together';
  if (rw.regex === undefined && route.prefix === undefined && route.exact === undefined) {
    return 'replace_prefix and strip_prefix need a prefix or exact route (nginx refuses a proxy_pass URI in a regex location); use regex and replacement';
  }
  return undefined;
}
