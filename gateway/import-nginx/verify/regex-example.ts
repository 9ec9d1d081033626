// A string a (JavaScript) regex matches, for the requests --verify generates: the first
// alternative of every choice, one repetition of every loop, a representative of every
// class. Enough for the patterns locations are written with; a pattern it cannot serve
// gets no example (and the caller checks every example against the regex).

export function regexExample(source: string): string | undefined {
  let i = 0;
  const s = source;
  const alternatives = (): string => {
    const first = sequence();
    while (s[i] === '|') { i++; sequence(); }
    return first;
  };
  const sequence = (): string => {
    let out = '';
    while (i < s.length && s[i] !== '|' && s[i] !== ')') {
      const atomStart = i;
      let atom = atomText();
      if (atom === undefined) return out;
      // quantifier
      const c = s[i];
      if (c === '*' || c === '+' || c === '?') { i++; if (s[i] === '?' || s[i] === '+') i++; }
      else if (c === '{') {
        const m = /^\{(\d+)(,(\d*))?\}/.exec(s.slice(i));
        if (m !== null) { i += m[0].length; atom = atom.repeat(Math.max(1, Number(m[1]))); if (s[i] === '?') i++; }
      }
      void atomStart;
      out += atom;
    }
    return out;
  };
  const classChar = (body: string): string => {
    const negated = body.startsWith('^');
    const b = negated ? body.slice(1) : body;
    if (negated) {
      for (const cand of ['a', 'z', '0', '_', '-']) if (!inClass(b, cand)) return cand;
      return '~';
    }
    if (b.startsWith('\\')) return escapeChar(b[1] ?? 'a');
    return b[0] ?? 'a';
  };
  const atomText = (): string | undefined => {
    const c = s[i]!;
    if (c === '^' || c === '$') { i++; return ''; }
    if (c === '(') {
      i++;
      if (s.startsWith('?:', i)) i += 2;
      else if (s.startsWith('?=', i) || s.startsWith('?!', i) || s.startsWith('?<=', i) || s.startsWith('?<!', i)) {
        let depth = 1;
        while (i < s.length && depth > 0) { if (s[i] === '\\') i++; else if (s[i] === '(') depth++; else if (s[i] === ')') depth--; i++; }
        return '';
      } else if (s.startsWith('?<', i)) i = s.indexOf('>', i) + 1;
      const inner = alternatives();
      if (s[i] !== ')') return undefined;
      i++;
      return inner;
    }
    if (c === '[') {
      let j = i + 1;
      if (s[j] === '^') j++;
      if (s[j] === ']') j++;
      while (j < s.length && s[j] !== ']') j += s[j] === '\\' ? 2 : 1;
      const body = s.slice(i + 1, j);
      i = j + 1;
      return classChar(body);
    }
    if (c === '\\') {
      const d = s[i + 1] ?? '';
      i += 2;
      if (d === 'b' || d === 'B') return '';
      return escapeChar(d);
    }
    if (c === '.') { i++; return 'a'; }
    i++;
    return c;
  };
  const out = alternatives();
  return i < s.length ? undefined : out;
}

function escapeChar(d: string): string {
  if (d === 'd') return '1';
  if (d === 'w') return 'a';
  if (d === 's') return ' ';
  if (d === 'D' || d === 'W' || d === 'S') return '-';
  return d;
}

function inClass(body: string, ch: string): boolean {
  try {
    return new RegExp(`[${body}]`).test(ch);
  } catch {
    return true;
  }
}
