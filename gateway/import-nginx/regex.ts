import { compileRegex } from '../route/regex.js';

// nginx regexes are PCRE; Sluice's are JavaScript's. The common subset is the same
// syntax; what differs is translated where it means the same, and refused otherwise.

export function pcreToJs(pattern: string): { ok: true; source: string; caseless: boolean } | { ok: false; reason: string } {
  let source = pattern;
  let caseless = false;
  if (source.startsWith('(?i)')) { caseless = true; source = source.slice(4); }
  if (/\(\?[imsxXUJ-]+[):]/.test(source)) {
    return { ok: false, reason: 'inline flags other than a leading (?i) are not translated' };
  }
  if (/\(\?>/.test(source) || /[*+?}][+]/.test(source.replace(/\\./g, ''))) return { ok: false, reason: 'atomic groups and possessive quantifiers have no JavaScript equivalent' };
  source = source.replace(/\(\?P<(\w+)>/g, '(?<$1>').replace(/\(\?P=(\w+)\)/g, '\\k<$1>').replace(/\\A/g, '^').replace(/\\[zZ]/g, '$');
  // What the gateway's loader will accept (its linear-time engine refuses lookaround and backreferences).
  const compiled = compileRegex(source, { caseInsensitive: caseless });
  if (typeof compiled === 'string') return { ok: false, reason: compiled };
  return { ok: true, source, caseless };
}
