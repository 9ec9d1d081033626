import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_SCHEDULE_MS, JITTER, maxAttempts, retryDelayMs } from './schedule.js';

test('the default schedule: Svix\'s 5 s .. 10 h, 8 attempts, about 27.6 hours in all', () => {
  assert.deepEqual(DEFAULT_SCHEDULE_MS, [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000]);
  assert.equal(maxAttempts(DEFAULT_SCHEDULE_MS), 8);
  assert.equal(DEFAULT_SCHEDULE_MS.reduce((a, b) => a + b, 0), 99_305_000);
});

test('each wait is its step jittered by ±20%, and the schedule runs out', () => {
  const s = [1000, 60_000];
  assert.equal(retryDelayMs(s, 1, undefined, () => 0), 1000 * (1 - JITTER));
  assert.equal(retryDelayMs(s, 1, undefined, () => 1), 1000 * (1 + JITTER));
  assert.equal(retryDelayMs(s, 2, undefined, () => 0.5), 60_000);
  assert.equal(retryDelayMs(s, 3, undefined, () => 0.5), undefined);
});

test('Retry-After is a floor, never a way to retry sooner', () => {
  const s = [60_000];
  assert.equal(retryDelayMs(s, 1, 120_000, () => 0.5), 120_000);
  assert.equal(retryDelayMs(s, 1, 1000, () => 0.5), 60_000);
});
