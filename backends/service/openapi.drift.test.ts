import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseOptionsHeader } from '../image/options.js';
import { OPENAPI_FILE, backendOpenApi, openApiText } from './openapi.js';

test('openapi.json is what the schemas generate (else: npm run openapi, and commit it)', () => {
  assert.equal(readFileSync(OPENAPI_FILE, 'utf8'), openApiText(),
    'backends/service/openapi.json differs from backends/service/openapi.ts and backends/image/options-schema.ts: run `npm run openapi` and commit the result');
});

test('every $ref in the document resolves, and its X-Options example is options the parser accepts', () => {
  const doc = backendOpenApi();
  const text = JSON.stringify(doc);
  for (const [, path] of text.matchAll(/"\$ref":"#\/([^"]+)"/g)) {
    let node: unknown = doc;
    for (const part of path!.split('/')) node = (node as Record<string, unknown> | undefined)?.[part];
    assert.ok(node !== undefined, `#/${path} does not resolve`);
  }
  const images = (doc.paths as Record<string, { post: { parameters: { name?: string; example?: string }[] } }>)['/v1/images']!;
  const example = images.post.parameters.find((p) => p.name === 'X-Options')!.example!;
  assert.equal(parseOptionsHeader(example).format, 'webp');
});
