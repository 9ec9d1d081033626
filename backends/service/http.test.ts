import assert from 'node:assert/strict';
import { test } from 'node:test';
import { acceptedFormats } from './http.js';

const sorted = (s: ReadonlySet<string> | undefined): string[] | undefined => (s === undefined ? undefined : [...s].sort());

test('acceptedFormats: no image type named means any format', () => {
  assert.equal(acceptedFormats(undefined), undefined);
  assert.equal(acceptedFormats('application/json'), undefined);
  assert.equal(acceptedFormats('*/*'), undefined);
});

test('acceptedFormats: the most specific range decides each format', () => {
  assert.deepEqual(sorted(acceptedFormats('image/webp, image/jpeg')), ['jpeg', 'webp']);
  assert.deepEqual(sorted(acceptedFormats('image/avif,image/webp,image/apng,image/*,*/*;q=0.8')), ['avif', 'gif', 'jp2', 'jpeg', 'png', 'webp']);
  assert.deepEqual(sorted(acceptedFormats('image/avif;q=0, image/*')), ['gif', 'jp2', 'jpeg', 'png', 'webp']);
  assert.deepEqual(sorted(acceptedFormats('image/png;q=0, */*')), ['avif', 'gif', 'jp2', 'jpeg', 'webp']);
  assert.deepEqual(sorted(acceptedFormats('IMAGE/WEBP ; q=0.5')), ['webp']);
  assert.deepEqual(sorted(acceptedFormats('image/svg+xml')), []);
});
