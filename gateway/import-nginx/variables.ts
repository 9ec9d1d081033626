// nginx variables in a header value, a redirect or a body → the Sluice template
// variables (the documented set: $scheme $host $server_port $request_uri $uri $args
// $is_args $remote_addr $request_id $http_<name> $1..$9 $proxy_add_x_forwarded_for).

const SAME = new Set(['scheme', 'host', 'server_port', 'request_uri', 'uri', 'args', 'is_args', 'remote_addr', 'request_id', 'proxy_add_x_forwarded_for']);
const RENAMED: Record<string, string> = { document_uri: 'uri', query_string: 'args' };

/**
 * The template, or the first variable that has no Sluice equivalent. `constants` are
 * variables known at import time ($server_name, `set $x constant`).
 */
export function translateTemplate(value: string, constants: ReadonlyMap<string, string>): { ok: true; value: string } | { ok: false; variable: string } {
  let bad: string | undefined;
  // `${name}` is nginx's way to end a name inside a word; Sluice's templates take `$name` only,
  // so the braces go where the next character cannot continue the name.
  const out = value.replace(/\$\{(\w+)\}|\$(\w+)/g, (m, braced: string | undefined, plain: string | undefined, offset: number) => {
    const name = (braced ?? plain)!;
    const rest = value.slice(offset + m.length);
    let v: string | undefined;
    if (constants.has(name)) return constants.get(name)!;
    if (/^[1-9]$/.test(name) || SAME.has(name) || /^http_\w+$/.test(name)) v = `$${name}`;
    else if (RENAMED[name] !== undefined) v = `$${RENAMED[name]}`;
    if (v === undefined) { bad ??= `$${name}`; return m; }
    if (braced !== undefined && /^\w/.test(rest)) { bad ??= `\${${name}}`; return m; }
    return v;
  });
  return bad === undefined ? { ok: true, value: out } : { ok: false, variable: bad };
}
