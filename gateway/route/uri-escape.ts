// How nginx writes a decoded path back into a URI (ngx_escape_uri, NGX_ESCAPE_URI, as
// nginx 1.22 sends a rewritten path upstream): control characters, space, `"`, `#`, `%`,
// `<`, `>`, `?`, `\`, `^`, backquote, `{`, `|`, `}`, DEL and every byte past ASCII become
// %XX (upper-case hex); everything else, `/` included, stays as it is.

const ESCAPE = new Uint8Array(256);
for (let c = 0; c < 256; c++) ESCAPE[c] = c <= 0x20 || c >= 0x7f || '"#%<>?\\^`{|}'.includes(String.fromCharCode(c)) ? 1 : 0;
const HEX = '0123456789ABCDEF';

/** `s` holds latin1 characters (one per byte), as the normalised path does. */
export function escapeUri(s: string): string {
  let i = 0;
  while (i < s.length && ESCAPE[s.charCodeAt(i) & 0xff] === 0 && s.charCodeAt(i) < 256) i++;
  if (i === s.length) return s;
  let out = s.slice(0, i);
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) {
      // Not from a decoded path (a config string): its UTF-8 bytes.
      for (const b of Buffer.from(s[i]!, 'utf8')) out += `%${HEX[b >> 4]}${HEX[b & 15]}`;
    } else if (ESCAPE[c] === 1) {
      out += `%${HEX[c >> 4]}${HEX[c & 15]}`;
    } else {
      out += s[i];
    }
  }
  return out;
}
