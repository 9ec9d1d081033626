// The Host header as nginx reads it to choose a server block and fill $host
// (ngx_http_validate_host): the port dropped, lower-cased, one trailing dot dropped. A
// Host with `..`, a slash, a NUL or a control character, or nothing before the port, is
// refused (400), as nginx refuses it.

/** The host name, '' when the request has no Host (HTTP/1.0), or undefined when it is invalid. */
export function hostName(value: string | undefined): string | undefined {
  if (value === undefined) return '';
  let end = value.length;
  let state = USUAL;
  let dot = -2;
  let upper = false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 46 /* . */) {
      if (dot === i - 1) return undefined;
      dot = i;
    } else if (c === 58 /* : */) {
      if (state === USUAL) { end = i; state = REST; }
    } else if (c === 91 /* [ */) {
      if (i === 0) state = LITERAL;
    } else if (c === 93 /* ] */) {
      if (state === LITERAL) { end = i + 1; state = REST; }
    } else if (c <= 0x20 || c === 0x7f || c === 47 /* / */) {
      return undefined;
    } else if (c >= 65 && c <= 90) {
      upper = true;
    }
  }
  if (dot === end - 1) end--;
  if (end <= 0) return undefined;
  const name = end === value.length ? value : value.slice(0, end);
  return upper ? name.toLowerCase() : name;
}

const USUAL = 0;
const LITERAL = 1;
const REST = 2;
