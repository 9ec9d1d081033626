// The request-target, read as nginx reads it (ngx_http_parse_complex_uri), with the
// checks a reverse proxy must add. Routes match the normalised path (nginx's $uri):
// every %XX decoded, `.` and `..` segments resolved, repeated slashes merged. A path
// that climbs out of the root, a bad escape or a NUL is refused (400), as nginx refuses
// them. Sluice also refuses what nginx lets through but a backend may read as another
// path: an encoded slash (%2F), a backslash (raw or %5C).
//
// What goes upstream (docs/routes.md, "What is forwarded"): without a rewrite, the
// client's path as written (its escapes kept) with only its dot segments resolved and
// slashes merged; nginx forwards even those raw, which lets a backend that does not
// normalise see `/admin/../public` where the gateway decided on `/public`.

export type TargetCheck =
  | {
    readonly ok: true;
    /** The path as the client wrote it, without the query. */
    readonly path: string;
    /** nginx's $uri: decoded and normalised; routes match this. Bytes over 0x7f are latin1 characters, one per byte. */
    readonly uri: string;
    /** What to forward when no rewrite applies: `path` with dot segments resolved and slashes merged, plus the query. */
    readonly forward: string;
    /** The query without its `?`, or undefined when the target has no `?`. */
    readonly query: string | undefined;
  }
  | { readonly ok: false; readonly reason: string };

const ORIGIN_FORM = 'request target must be a path (absolute-form and authority-form are not accepted)';

export function checkRequestTarget(url: string | undefined): TargetCheck {
  if (url === undefined || url.length === 0 || url.charCodeAt(0) !== 47 /* / */) return { ok: false, reason: ORIGIN_FORM };
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const query = q === -1 ? undefined : url.slice(q + 1);
  // The common case, nothing to decode or resolve: the path is its own $uri.
  if (!needsWork(path)) return { ok: true, path, uri: path, forward: url, query };
  const n = normalise(path);
  if (typeof n === 'string') return { ok: false, reason: n };
  return { ok: true, path, uri: n.uri, forward: q === -1 ? n.forward : `${n.forward}${url.slice(q)}`, query };
}

/** Anything that is not a plain segment character: `%`, `\`, NUL, and `/` followed by `/` or `.`. */
function needsWork(path: string): boolean {
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 37 /* % */ || c === 92 /* \ */ || c === 0) return true;
    if (c === 47 /* / */ && i + 1 < path.length) {
      const d = path.charCodeAt(i + 1);
      if (d === 47 || d === 46 /* . */) return true;
    }
  }
  return false;
}

/** The decoded, resolved path and the raw path resolved the same way, or why it is refused. */
function normalise(path: string): { uri: string; forward: string } | string {
  // Segments as decoded (for matching) and as written (for forwarding), resolved together.
  const decoded: string[] = [];
  const raw: string[] = [];
  let i = 1;
  let trailingSlash = false;
  while (i <= path.length) {
    let j = path.indexOf('/', i);
    if (j === -1) j = path.length;
    const seg = path.slice(i, j);
    const dec = decodeSegment(seg);
    if (dec === undefined) return 'request path has a % that is not followed by two hex digits';
    if (typeof dec !== 'string') return dec.reason;
    const last = j === path.length;
    if (dec === '' && !last) {
      // `//`: merged.
    } else if (dec === '.') {
      trailingSlash = last;
    } else if (dec === '..') {
      if (decoded.length === 0) return 'request path climbs out of the root with ..';
      decoded.pop();
      raw.pop();
      trailingSlash = last;
    } else {
      decoded.push(dec);
      raw.push(seg);
      trailingSlash = false;
    }
    i = j + 1;
  }
  // A path ending in `/`, `/.` or `/..` ends in a slash once resolved.
  const tail = trailingSlash && decoded.length > 0 ? '/' : '';
  const uri = `/${decoded.join('/')}${tail}`;
  const forward = `/${raw.join('/')}${tail}`;
  return { uri, forward };
}

/** One segment with its escapes decoded (latin1: one character per byte), undefined for a bad escape. */
function decodeSegment(seg: string): string | { reason: string } | undefined {
  if (seg.indexOf('\\') !== -1) return { reason: 'request path contains a backslash' };
  if (seg.indexOf('\0') !== -1) return { reason: 'request path contains a NUL' };
  if (seg.indexOf('%') === -1) return seg;
  let out = '';
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i]!;
    if (c !== '%') { out += c; continue; }
    const byte = hexByte(seg, i + 1);
    if (byte === -1) return undefined;
    if (byte === 0x2f) return { reason: 'request path contains an encoded slash (%2F)' };
    if (byte === 0x5c) return { reason: 'request path contains an encoded backslash (%5C)' };
    if (byte === 0) return { reason: 'request path contains an encoded NUL (%00)' };
    out += String.fromCharCode(byte);
    i += 2;
  }
  return out;
}

/** The byte `%` introduces at `at`, or -1 (past the end, charCodeAt is NaN, which is no digit). */
function hexByte(s: string, at: number): number {
  const h = hexDigit(s.charCodeAt(at));
  const l = hexDigit(s.charCodeAt(at + 1));
  return h === -1 || l === -1 ? -1 : h * 16 + l;
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const lower = c | 0x20;
  if (lower >= 97 && lower <= 102) return lower - 87;
  return -1;
}
