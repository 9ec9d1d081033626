// The request-target checks a reverse proxy must make before routing: only
// origin-form paths, no dot-segments (raw or percent-encoded), no encoded slashes,
// backslashes or NULs that a backend might decode into another path.

export type TargetCheck = { readonly ok: true; readonly path: string } | { readonly ok: false; readonly reason: string };

const FORBIDDEN = /%2f|%5c|%00|\\|\0/i;

export function checkRequestTarget(url: string | undefined): TargetCheck {
  if (url === undefined || url.length === 0 || url.charCodeAt(0) !== 47 /* / */) {
    return { ok: false, reason: 'request target must be a path (absolute-form and authority-form are not accepted)' };
  }
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  if (path.charCodeAt(1) === 47) return { ok: false, reason: 'request path must not start with //' };
  if (FORBIDDEN.test(path)) return { ok: false, reason: 'request path contains an encoded slash, a backslash or a NUL' };
  if (hasDotSegment(path.replace(/%2e/gi, '.'))) return { ok: false, reason: 'request path contains a . or .. segment' };
  return { ok: true, path };
}

function hasDotSegment(path: string): boolean {
  if (path.indexOf('.') === -1) return false;
  for (const seg of path.split('/')) if (seg === '.' || seg === '..') return true;
  return false;
}
