import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ROUTES, routeFor } from './routes.js';

test('routeFor: exact paths, prefixes with what follows them, nothing else', () => {
  assert.equal(routeFor('/v1/images')?.endpoint, 'images');
  assert.equal(routeFor('/v1/images/fetch')?.endpoint, 'images_fetch');
  assert.equal(routeFor('/v1/results/abc')?.endpoint, 'results');
  assert.equal(routeFor('/v1/watermarks/logo')?.endpoint, 'watermarks');
  assert.equal(routeFor('/healthz')?.endpoint, 'healthz');
  assert.equal(routeFor('/v1/images/'), undefined);
  assert.equal(routeFor('/v1/imagesx'), undefined);
  assert.equal(routeFor('/'), undefined);
});

test('the route table: one route per path and per metrics label; work that costs a slot is admitted', () => {
  assert.equal(new Set(ROUTES.map((r) => r.path)).size, ROUTES.length);
  assert.equal(new Set(ROUTES.map((r) => r.endpoint)).size, ROUTES.length);
  const admitted = ROUTES.filter((r) => r.admit).map((r) => r.endpoint).sort();
  assert.deepEqual(admitted, ['detect', 'images', 'images_fetch', 'watermarks']);
});
