import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { NginxParseError, parseNginxFile, tokenize, type Directive } from './parse.js';

const root = mkdtempSync(join(tmpdir(), 'sluice-import-parse-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

/** Writes a tree of files under a fresh dir and returns the path of the first one. */
function tree(files: Record<string, string>): string {
  const dir = join(root, `t${n++}`);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return join(dir, Object.keys(files)[0]!);
}

function parseText(text: string): Directive[] {
  return parseNginxFile(tree({ 'nginx.conf': text }));
}

function simple(ds: readonly Directive[]): unknown[] {
  return ds.map((d) => (d.block === undefined ? [d.name, ...d.args] : [d.name, ...d.args, simple(d.block)]));
}

function parseError(text: string): NginxParseError {
  try {
    parseText(text);
  } catch (err) {
    if (err instanceof NginxParseError) return err;
    throw err;
  }
  assert.fail('the config was accepted');
}

describe('import-nginx: tokenizer', () => {
  it('reads quotes, escapes and comments the way nginx does', () => {
    const ds = parseText([
      'a "x y" \'single; {quoted}\';   # comment ; { }',
      'b "q\\"uote" \'it\\\'s\' back\\\\slash "tab\\there" "keep\\d";',
      'c foo#bar "";',
      'd ${name}x;',
      'e "multi',
      'line";',
    ].join('\n'));
    assert.deepEqual(simple(ds), [
      ['a', 'x y', 'single; {quoted}'],
      ['b', 'q"uote', "it's", 'back\\slash', 'tab\there', 'keep\\d'],
      ['c', 'foo#bar', ''],
      ['d', '${name}x'],
      ['e', 'multi\nline'],
    ]);
    assert.deepEqual(ds.map((d) => d.line), [1, 2, 3, 4, 5]);
  });

  it('keeps `}` inside a bare word, as nginx does, and splits on `;` and `{`', () => {
    const toks = tokenize('x a}b;y{z;}', 'f');
    assert.deepEqual(toks.map((t) => (t.kind === 'word' ? t.text : t.kind)), ['x', 'a}b', ';', 'y', '{', 'z', ';', '}', 'eof']);
  });

  it('nests blocks and records each directive\'s own line', () => {
    const ds = parseText('http {\n  server {\n    location / {\n      proxy_pass http://a;\n    }\n  }\n}\n');
    assert.deepEqual(simple(ds), [['http', [['server', [['location', '/', [['proxy_pass', 'http://a']]]]]]]]);
    const loc = ds[0]!.block![0]!.block![0]!;
    assert.equal(loc.line, 3);
    assert.equal(loc.block![0]!.line, 4);
  });
});

describe('import-nginx: parse errors name file and line', () => {
  const cases: [string, string, number, RegExp][] = [
    ['missing ;', 'http {\n  a b\n}\n', 3, /unexpected "}"/],
    ['unclosed block', 'http {\n  a;\n', 3, /unexpected end of file, expecting "}"/],
    ['stray }', 'a;\n}\n', 2, /unexpected "}"/],
    ['unterminated quote', 'a "b;\nc;\n', 3, /unexpected end of file/],
    ['junk after a quote', 'a "b"c;\n', 1, /unexpected "c"/],
    ['lone ;', 'a;\n;\n', 2, /unexpected ";"/],
    ['missing ; at eof', 'a b', 1, /unexpected end of file, expecting ";" or "}"/],
  ];
  for (const [name, text, line, re] of cases) {
    it(name, () => {
      const err = parseError(text);
      assert.equal(err.line, line, err.message);
      assert.match(err.reason, re);
      assert.match(err.message, new RegExp(`nginx\\.conf:${line}: `));
    });
  }
});

describe('import-nginx: include', () => {
  it('follows relative includes against the main file\'s directory (nginx\'s prefix), globs sorted', () => {
    const main = tree({
      'nginx.conf': 'http {\n  include conf.d/*.conf;\n  include none/*.conf;\n  server { include snippets/s.conf; }\n}\n',
      'conf.d/b.conf': 'b 1;\n',
      'conf.d/a.conf': '# a\na 1;\ninclude snippets/s.conf;\n',
      'conf.d/.hidden.conf': 'hidden;\n',
      'conf.d/c.txt': 'not-included;\n',
      'snippets/s.conf': 'from_snippet;\n',
    });
    const ds = parseNginxFile(main);
    assert.deepEqual(simple(ds), [['http', [['a', '1'], ['from_snippet'], ['b', '1'], ['server', [['from_snippet']]]]]]);
    const http = ds[0]!.block!;
    assert.ok(http[0]!.file.endsWith(join('conf.d', 'a.conf')));
    assert.equal(http[0]!.line, 2);
    assert.ok(http[1]!.file.endsWith(join('snippets', 's.conf')));
  });

  it('refuses an include cycle, naming the loop, but allows one file included twice', () => {
    const main = tree({
      'nginx.conf': 'include a.conf;\n',
      'a.conf': 'x;\ninclude b.conf;\n',
      'b.conf': 'y;\n\ninclude a.conf;\n',
    });
    let err: NginxParseError | undefined;
    try { parseNginxFile(main); } catch (e) { err = e as NginxParseError; }
    assert.ok(err instanceof NginxParseError);
    assert.ok(err.file.endsWith('b.conf'));
    assert.equal(err.line, 3);
    assert.match(err.reason, /include cycle: .*a\.conf -> .*b\.conf -> .*a\.conf/);

    const twice = tree({ 'nginx.conf': 'include s.conf;\ninclude s.conf;\n', 's.conf': 's;\n' });
    assert.deepEqual(simple(parseNginxFile(twice)), [['s'], ['s']]);
  });

  it('a missing (non-glob) include and a syntax error inside an include are errors at their own file:line', () => {
    const missing = tree({ 'nginx.conf': 'a;\ninclude nope.conf;\n' });
    assert.throws(() => parseNginxFile(missing), (e: unknown) => e instanceof NginxParseError && e.line === 2 && /nginx\.conf$/.test(e.file) && /nope\.conf/.test(e.reason));
    const bad = tree({ 'nginx.conf': 'http {\ninclude inner.conf;\n}\n', 'inner.conf': 'ok;\n}\n' });
    assert.throws(() => parseNginxFile(bad), (e: unknown) => e instanceof NginxParseError && e.line === 2 && /inner\.conf$/.test(e.file));
  });
});
