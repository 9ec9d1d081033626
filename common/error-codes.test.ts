import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES, ERROR_CODE_NAMES, codesAnsweredBy, errorCodesMarkdown, type Answerer, type ErrorCodeEntry } from './error-codes.js';

// The table of error codes is the one list: the docs page is rendered from it, the
// nginx+Lua module answers only with its codes, and each listener's OpenAPI document
// lists the codes its source answers with.

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

test('docs/errors.md is what the table renders (else: npm run docs:errors, and commit it)', () => {
  assert.ok(readFileSync(join(ROOT, 'docs/errors.md'), 'utf8') === errorCodesMarkdown(),
    'docs/errors.md is out of date: run `npm run docs:errors` and commit the result');
});

test('every code is snake_case with an error status, a meaning and who answers with it', () => {
  for (const c of ERROR_CODE_NAMES) {
    const e: ErrorCodeEntry = ERROR_CODES[c];
    assert.match(c, /^[a-z]+(_[a-z]+)*$/);
    assert.ok(e.status >= 400 && e.status <= 599, c);
    assert.ok(e.meaning.length > 10 && e.by.length > 0, c);
  }
});

test('the nginx+Lua module answers with codes of the table, at their status', () => {
  const lua = readFileSync(join(ROOT, 'lua-compat/nginx/sluice.lua'), 'utf8');
  const calls = [...lua.matchAll(/send_error\((\d{3}), "([a-z_]+)"/g)];
  assert.ok(calls.length >= 4);
  for (const [, status, code] of calls) assert.equal(ERROR_CODES[code as keyof typeof ERROR_CODES]?.status, Number(status), `sluice.lua: ${status} ${code}`);
  const reasons = /local REASONS = \{([^}]*)\}/.exec(lua)![1]!.match(/[a-z_]+/g)!;
  for (const code of reasons) assert.equal(ERROR_CODES[code as keyof typeof ERROR_CODES]?.status, 429, `sluice.lua REASONS: ${code}`);
});

/** Which listener's code a source file is. */
function answererOf(path: string): Answerer | undefined {
  if (path.startsWith('gateway/admin/')) return 'admin';
  if (path.startsWith('gateway/')) return 'gateway';
  if (path.startsWith('backends/webhooks/')) return 'webhooks';
  if (path.startsWith('backends/')) return 'backend';
  return undefined;
}

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [p] : [];
  });
}

test('each code is listed for every listener whose source answers with it (so its OpenAPI document lists it)', () => {
  const missing: string[] = [];
  for (const file of [...sources('gateway'), ...sources('backends')]) {
    const who = answererOf(relative(ROOT, join(ROOT, file)));
    if (who === undefined) continue;
    const listed = new Set<string>(codesAnsweredBy(who));
    const text = readFileSync(join(ROOT, file), 'utf8');
    // A code as a call site writes it: new HttpError(404, 'not_found', …), sendError(ctx, 503, 'overloaded', …),
    // [502, 'bad_gateway'], or a table from status to code ({ 410: 'gone' }).
    for (const [, code] of text.matchAll(/\b[45]\d\d[,:]\s*'([a-z_]+)'/g)) {
      if (code! in ERROR_CODES && !listed.has(code!)) missing.push(`${file}: ${code} (add '${who}' to its by)`);
    }
  }
  assert.deepEqual(missing, []);
});
