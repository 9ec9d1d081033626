import { setFlagsFromString } from 'node:v8';

// Every regex a config gives (route paths, header conditions, server names, rewrites) is
// compiled here, once, at config load, and can never stall the event loop.
//
// Why this way: V8 has a linear-time regex engine of its own (an NFA, no backtracking)
// for patterns without backreferences or lookahead. Run on every pattern (the `l` flag)
// it costs about 12 times the usual backtracking engine on short paths (50 route regexes:
// ~55 us a request against ~5 us), more than a 200-route config may add. So the patterns
// run on the usual engine, with V8 told to switch to the linear one for any match that
// backtracks too much (--enable-experimental-regexp-engine-on-excessive-backtracks): a
// pathological pattern such as (a+)+$ costs a bounded number of backtracks (V8's default,
// 50,000) and then linear time. The switch is only possible for patterns the linear engine
// takes, so each pattern must compile with `l` too, or it is a config error. The linear
// engine has no case-insensitive mode (`li` is refused; `i` alone would backtrack
// exponentially), so a case-insensitive pattern (nginx `~*`) is rewritten with each ASCII
// letter as a class of both cases, which is what PCRE's caseless mode does for ASCII.
// A pure-JS RE2 (re2js) was the other candidate: linear always, but slower still than V8's
// own linear engine, and a dependency. Native RE2 builds download binaries.
setFlagsFromString('--enable-experimental-regexp-engine');
setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
try {
  new RegExp('a', 'l');
} catch {
  throw new Error('this Node.js does not take V8\'s linear-time regex engine flags; Sluice needs Node 24 (bin/sluice-node)');
}

export interface RegexOptions {
  readonly caseInsensitive?: boolean;
}

/**
 * The compiled pattern, or why it cannot be used. nginx writes PCRE; the syntax here is
 * JavaScript's, with two PCRE spellings nginx configs use accepted: `(?P<name>...)` and
 * a leading `(?i)`. A pattern with characters past ASCII matches the path's bytes, as
 * PCRE without UTF mode does in nginx.
 */
export function compileRegex(source: string, opts: RegexOptions = {}): RegExp | string {
  let src = source.replace(/\(\?P</g, '(?<');
  let caseless = opts.caseInsensitive === true;
  if (src.startsWith('(?i)')) {
    src = src.slice(4);
    caseless = true;
  }
  // eslint-disable-next-line no-control-regex
  if (/[^\x00-\x7f]/.test(src)) src = Buffer.from(src, 'utf8').toString('latin1');
  if (caseless) {
    const folded = foldCase(src);
    if (typeof folded !== 'string') return folded.error;
    src = folded;
  }
  try {
    new RegExp(src, 'l');
  } catch (err) {
    const msg = (err as Error).message;
    if (/linear time/.test(msg)) return `${JSON.stringify(source)} cannot run in linear time: backreferences and lookahead are not supported`;
    return `${JSON.stringify(source)} is not a valid regex (${msg.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '')})`;
  }
  return new RegExp(src);
}

/** How many capture groups the pattern has ($1..$n). */
export function groupCount(re: RegExp): number {
  return (new RegExp(`${re.source}|`).exec('')!.length) - 1;
}

/**
 * The pattern with every ASCII letter outside an escape made a class of both cases
 * (`a` -> `[aA]`, `[a-f]` -> `[a-fA-F]`), so that it matches as caseless without the `i`
 * flag. Escapes (`\d`, `\x41`, `\u{..}`, `\p{..}`, `\k<..>`), group names and counted
 * quantifiers are copied as they are.
 */
export function foldCase(src: string): string | { error: string } {
  let out = '';
  let i = 0;
  const n = src.length;
  const escape = (): string => {
    const start = i;
    const c = src[i + 1];
    i += 2;
    if (c === 'x') i += 2;
    else if (c === 'u') i += src[i] === '{' ? src.indexOf('}', i) - i + 1 : 4;
    else if (c === 'c') i += 1;
    else if ((c === 'p' || c === 'P') && src[i] === '{') i = src.indexOf('}', i) + 1;
    else if (c === 'k' && src[i] === '<') i = src.indexOf('>', i) + 1;
    if (i <= start) i = n;
    return src.slice(start, i);
  };
  while (i < n) {
    const c = src[i]!;
    if (c === '\\') {
      out += escape();
    } else if (c === '[') {
      let cls = '[';
      i++;
      if (src[i] === '^') { cls += '^'; i++; }
      let extra = '';
      while (i < n && src[i] !== ']') {
        if (src[i] === '\\') { cls += escape(); continue; }
        const a = src[i]!;
        if (src[i + 1] === '-' && i + 2 < n && src[i + 2] !== ']' && src[i + 2] !== '\\') {
          const b = src[i + 2]!;
          cls += `${a}-${b}`;
          if (isLower(a) && isLower(b)) extra += `${a.toUpperCase()}-${b.toUpperCase()}`;
          else if (isUpper(a) && isUpper(b)) extra += `${a.toLowerCase()}-${b.toLowerCase()}`;
          else if (isLetter(a) || isLetter(b)) return { error: `${JSON.stringify(src)}: a case-insensitive range must be letters of one case (${a}-${b})` };
          i += 3;
          continue;
        }
        cls += a;
        if (isLetter(a)) extra += swap(a);
        i++;
      }
      out += `${cls}${extra}]`;
      i++;
    } else if (c === '(' && src[i + 1] === '?') {
      // (?: (?= (?! (?<= (?<! copied; a group name (?<name> copied with its name.
      const m = /^\(\?(<[A-Za-z_$][\w$]*>|<=|<!|[:=!])/.exec(src.slice(i));
      const head = m === null ? '(?' : m[0];
      out += head;
      i += head.length;
    } else if (c === '{') {
      const m = /^\{\d+(,\d*)?\}/.exec(src.slice(i));
      const q = m === null ? '{' : m[0];
      out += q;
      i += q.length;
    } else {
      out += isLetter(c) ? `[${c}${swap(c)}]` : c;
      i++;
    }
  }
  return out;
}

const isLower = (c: string): boolean => c >= 'a' && c <= 'z';
const isUpper = (c: string): boolean => c >= 'A' && c <= 'Z';
const isLetter = (c: string): boolean => isLower(c) || isUpper(c);
const swap = (c: string): string => (isLower(c) ? c.toUpperCase() : c.toLowerCase());
