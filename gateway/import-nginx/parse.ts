// nginx configuration reader: the tokenizer follows ngx_conf_read_token (src/core/
// ngx_conf_file.c) closely enough that whatever nginx accepts reads the same here, and
// whatever it refuses is refused with the file and line nginx would blame.

import { readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';

export interface Directive {
  readonly name: string;
  /** Arguments with quotes removed and escapes applied; `$variables` stay as text. */
  readonly args: readonly string[];
  readonly file: string;
  /** Line of the directive's name (nginx blames the line of its `;`; the start is easier to find). */
  readonly line: number;
  /** Present for block directives (`http { … }`), with includes already spliced in. */
  readonly block: readonly Directive[] | undefined;
  /** The Lua source of an ngx_lua `*_by_lua_block { … }`, as written (its block is undefined). */
  readonly lua?: string;
  /** Set on an `include` the importer could not read (ParseOptions.missingIncludes: 'keep'). */
  readonly unreadable?: string;
}

export class NginxParseError extends Error {
  constructor(readonly file: string, readonly line: number, readonly reason: string) {
    super(`${file}:${line}: ${reason}`);
  }
}

type Token =
  | { kind: 'word'; text: string; line: number; quoted: boolean }
  | { kind: 'lua'; text: string; line: number }
  | { kind: ';' | '{' | '}'; line: number }
  | { kind: 'eof'; line: number };

/** Splits one file into words and the three punctuation tokens. Comments are skipped. */
export function tokenize(text: string, file: string): Token[] {
  const out: Token[] = [];
  let line = 1;
  let i = 0;
  const n = text.length;
  const isSpace = (c: string): boolean => c === ' ' || c === '\t' || c === '\r' || c === '\n';
  // After a quoted string nginx insists on a separator ("unexpected X" otherwise), so
  // `"a"b` cannot be read as one word by one tool and two by the other.
  let needSpace = false;
  // ngx_lua registers every `*_by_lua_block` directive with a block whose body is Lua,
  // read by its own lexer (ngx_http_lua_conf_read_lua_token): the body is one token.
  let atStart = true;
  let luaDirective = false;
  while (i < n) {
    const c = text[i]!;
    if (c === '\n') { line++; i++; needSpace = false; continue; }
    if (isSpace(c)) { i++; needSpace = false; continue; }
    if (c === '{' && luaDirective) {
      const body = readLuaBlock(text, i + 1, file, line);
      out.push({ kind: 'lua', text: body.text, line });
      line += body.lines;
      i = body.end;
      atStart = true; luaDirective = false; needSpace = false;
      continue;
    }
    if (c === ';' || c === '{' || c === '}') { out.push({ kind: c, line }); i++; needSpace = false; atStart = true; luaDirective = false; continue; }
    if (needSpace && c !== ')') throw new NginxParseError(file, line, `unexpected "${c}"`);
    needSpace = false;
    if (c === '#') {
      while (i < n && text[i] !== '\n') i++;
      continue;
    }
    const startLine = line;
    if (c === '"' || c === "'") {
      let j = i + 1;
      let raw = '';
      for (;;) {
        if (j >= n) throw new NginxParseError(file, line, 'unexpected end of file, expecting ";" or "}"');
        const d = text[j]!;
        if (d === '\\' && j + 1 < n) { raw += d + text[j + 1]!; if (text[j + 1] === '\n') line++; j += 2; continue; }
        if (d === c) break;
        if (d === '\n') line++;
        raw += d;
        j++;
      }
      out.push({ kind: 'word', text: unescape(raw), line: startLine, quoted: true });
      atStart = false;
      i = j + 1;
      needSpace = true;
      continue;
    }
    let j = i;
    let raw = '';
    while (j < n) {
      const d = text[j]!;
      if (d === '\\' && j + 1 < n) { raw += d + text[j + 1]!; if (text[j + 1] === '\n') line++; j += 2; continue; }
      // As in nginx, only a separator, `;` or `{` ends a bare word: `}` is an ordinary
      // character there, and `{` right after `$` is the start of `${name}`.
      if (isSpace(d) || d === ';') break;
      if (d === '{' && !raw.endsWith('$')) break;
      raw += d;
      j++;
    }
    out.push({ kind: 'word', text: unescape(raw), line: startLine, quoted: false });
    if (atStart) luaDirective = raw.endsWith('_by_lua_block');
    atStart = false;
    i = j;
  }
  out.push({ kind: 'eof', line });
  return out;
}

/**
 * A Lua body from just after its `{` to the matching `}`: Lua strings ('…', "…" with
 * escapes), long brackets ([[…]], [==[…]==]), comments (-- to the end of the line, and
 * --[[…]]) may hold braces that do not count. Returns the body, where reading resumes
 * and how many newlines it crossed.
 */
function readLuaBlock(text: string, from: number, file: string, line: number): { text: string; end: number; lines: number } {
  const n = text.length;
  let depth = 0;
  let i = from;
  const longBracket = (at: number): number => {
    // `[`, any number of `=`, `[`: the level, or -1 when this is no long bracket.
    let k = at + 1;
    while (text[k] === '=') k++;
    return text[k] === '[' ? k - at - 1 : -1;
  };
  const skipLong = (at: number, level: number): number => {
    const close = `]${'='.repeat(level)}]`;
    const e = text.indexOf(close, at + level + 2);
    if (e === -1) throw new NginxParseError(file, line, 'unexpected end of file in a Lua long bracket');
    return e + close.length;
  };
  while (i < n) {
    const c = text[i]!;
    if (c === '-' && text[i + 1] === '-') {
      const level = text[i + 2] === '[' ? longBracket(i + 2) : -1;
      if (level >= 0) { i = skipLong(i + 2, level); continue; }
      while (i < n && text[i] !== '\n') i++;
      continue;
    }
    if (c === '[') {
      const level = longBracket(i);
      if (level >= 0) { i = skipLong(i, level); continue; }
    }
    if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < n && text[j] !== c) {
        if (text[j] === '\\') j++;
        else if (text[j] === '\n') throw new NginxParseError(file, line + countLines(text, from, j), 'unfinished Lua string');
        j++;
      }
      if (j >= n) throw new NginxParseError(file, line, 'unexpected end of file in a Lua string');
      i = j + 1;
      continue;
    }
    if (c === '{') depth++;
    if (c === '}') {
      if (depth === 0) return { text: text.slice(from, i), end: i + 1, lines: countLines(text, from, i) };
      depth--;
    }
    i++;
  }
  throw new NginxParseError(file, line, 'unexpected end of file in a Lua block, expecting "}"');
}

function countLines(text: string, from: number, to: number): number {
  let k = 0;
  for (let i = from; i < to; i++) if (text[i] === '\n') k++;
  return k;
}

/** nginx's unescaping, for quoted and bare words alike: \" \' \\ \t \r \n; any other backslash stays. */
function unescape(raw: string): string {
  let s = '';
  for (let k = 0; k < raw.length; k++) {
    const c = raw[k]!;
    if (c === '\\' && k + 1 < raw.length) {
      const d = raw[k + 1]!;
      if (d === '"' || d === "'" || d === '\\') { s += d; k++; continue; }
      if (d === 't') { s += '\t'; k++; continue; }
      if (d === 'r') { s += '\r'; k++; continue; }
      if (d === 'n') { s += '\n'; k++; continue; }
    }
    s += c;
  }
  return s;
}

export interface ParseOptions {
  /**
   * Where relative `include` paths point. nginx resolves them against its conf prefix,
   * which is the directory of the main file given with -c, not of the including file.
   */
  readonly prefix?: string;
  /**
   * A non-glob include that cannot be read: nginx refuses to start ('error', the
   * default); the importer keeps going ('keep') with an `include` directive marked
   * `unreadable`, which it reports.
   */
  readonly missingIncludes?: 'error' | 'keep';
  /** Where a relative include missing under the prefix is looked for next (the importer: nginx's own default prefix). */
  readonly fallbackPrefix?: string;
}

/** Reads `file` and every file it includes, into one tree. Throws NginxParseError. */
export function parseNginxFile(file: string, opts: ParseOptions = {}): Directive[] {
  const main = resolve(file);
  return parseOne(main, { ...opts, prefix: opts.prefix ?? dirname(main) }, []);
}

type Resolved = ParseOptions & { readonly prefix: string };

function parseOne(file: string, opts: Resolved, stack: readonly string[]): Directive[] {
  const prefix = opts.prefix;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new NginxParseError(file, 0, `cannot read: ${(err as Error).message}`);
  }
  const tokens = tokenize(text, file);
  let pos = 0;
  const chain = [...stack, realOrSame(file)];

  const parseBlock = (inBlock: boolean): Directive[] => {
    const out: Directive[] = [];
    for (;;) {
      const t = tokens[pos]!;
      if (t.kind === 'eof') {
        if (inBlock) throw new NginxParseError(file, t.line, 'unexpected end of file, expecting "}"');
        return out;
      }
      if (t.kind === '}') {
        if (!inBlock) throw new NginxParseError(file, t.line, 'unexpected "}"');
        pos++;
        return out;
      }
      if (t.kind !== 'word') throw new NginxParseError(file, t.line, `unexpected "${t.kind}"`);
      const name = t.text;
      const line = t.line;
      pos++;
      const args: string[] = [];
      for (;;) {
        const a = tokens[pos]!;
        if (a.kind === 'word') { args.push(a.text); pos++; continue; }
        if (a.kind === 'lua') {
          pos++;
          out.push({ name, args, file, line, block: undefined, lua: a.text });
          break;
        }
        if (a.kind === ';') {
          pos++;
          if (name === 'include') out.push(...include(args, line));
          else out.push({ name, args, file, line, block: undefined });
          break;
        }
        if (a.kind === '{') {
          pos++;
          if (name === 'include') throw new NginxParseError(file, line, 'directive "include" has no block');
          const block = parseBlock(true);
          out.push({ name, args, file, line, block });
          break;
        }
        if (a.kind === '}') throw new NginxParseError(file, a.line, 'unexpected "}"');
        throw new NginxParseError(file, a.line, 'unexpected end of file, expecting ";" or "}"');
      }
    }
  };

  const include = (args: readonly string[], line: number): Directive[] => {
    if (args.length !== 1) throw new NginxParseError(file, line, 'invalid number of arguments in "include" directive');
    let pattern = isAbsolute(args[0]!) ? args[0]! : join(prefix, args[0]!);
    const isGlob = /[*?[]/.test(pattern);
    if (!isAbsolute(args[0]!) && opts.fallbackPrefix !== undefined && !(isGlob ? glob(pattern).length > 0 : exists(pattern, true))) {
      const alt = join(opts.fallbackPrefix, args[0]!);
      if (isGlob ? glob(alt).length > 0 : exists(alt, true)) pattern = alt;
    }
    if (!isGlob && opts.missingIncludes === 'keep' && !exists(pattern, true)) {
      return [{ name: 'include', args, file, line, block: undefined, unreadable: `cannot read ${pattern}` }];
    }
    const files = isGlob ? glob(pattern) : [pattern];
    const out: Directive[] = [];
    for (const f of files) {
      const real = realOrSame(f);
      // nginx has no cycle check and recurses until it runs out of descriptors; refusing
      // is the only answer that does not hang, and it names the loop.
      const at = chain.indexOf(real);
      if (at !== -1) {
        throw new NginxParseError(file, line, `include cycle: ${[...chain.slice(at), real].join(' -> ')}`);
      }
      try {
        out.push(...parseOne(f, opts, chain));
      } catch (err) {
        if (err instanceof NginxParseError && err.line === 0 && err.file === f) {
          throw new NginxParseError(file, line, `include ${JSON.stringify(args[0])}: ${err.reason}`);
        }
        throw err;
      }
    }
    return out;
  };

  return parseBlock(false);
}

function realOrSame(f: string): string {
  try { return realpathSync(f); } catch { return resolve(f); }
}

/**
 * glob(3) as nginx calls it (flags 0): sorted by byte order, `*` and `?` do not match a
 * leading dot, a pattern that matches nothing is no error.
 */
export function glob(pattern: string): string[] {
  const parts = resolve(pattern).split(sep);
  let bases = [parts[0] === '' ? sep : parts[0]!];
  for (let k = 1; k < parts.length; k++) {
    const seg = parts[k]!;
    if (seg === '') continue;
    const last = k === parts.length - 1;
    const next: string[] = [];
    if (!/[*?[]/.test(seg)) {
      for (const b of bases) {
        const p = join(b, seg);
        if (exists(p, last)) next.push(p);
      }
    } else {
      const re = segmentRegex(seg);
      for (const b of bases) {
        let names: string[];
        try { names = readdirSync(b); } catch { continue; }
        for (const name of names.sort(byteOrder)) {
          if (name.startsWith('.') && !seg.startsWith('.')) continue;
          const p = join(b, name);
          if (re.test(name) && exists(p, last)) next.push(p);
        }
      }
    }
    bases = next;
  }
  return bases.sort(byteOrder);
}

function exists(p: string, file: boolean): boolean {
  try { const s = statSync(p); return file ? true : s.isDirectory(); } catch { return false; }
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function segmentRegex(seg: string): RegExp {
  let re = '';
  for (let k = 0; k < seg.length; k++) {
    const c = seg[k]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const close = seg.indexOf(']', k + 2);
      if (close === -1) { re += '\\['; continue; }
      let body = seg.slice(k + 1, close);
      if (body.startsWith('!')) body = `^${body.slice(1)}`;
      re += `[${body.replace(/\\/g, '\\\\')}]`;
      k = close;
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's');
}
