import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RedisClock } from './redis-clock.js';

// The offset to Redis's clock on an injected local clock: the shortest round trip wins.
describe('RedisClock', () => {
  it('no sample: no expiry (0), so a call is never refused for a clock it has not measured', () => {
    assert.equal(new RedisClock(() => 1000).redisTimeIn(50), 0);
  });

  it('takes the offset at the midpoint of the shortest recent round trip', () => {
    let now = 10_000;
    const c = new RedisClock(() => now);
    // Redis is 5,000 ms ahead. A slow sample (40 ms) read Redis late in its round trip.
    c.sample(1000, 1040, 6035);
    c.sample(2000, 2002, 7001);
    assert.equal(c.errorMs, 1);
    // Offset 5000 from the 2 ms sample, plus its half round trip of margin, plus 50 ms.
    assert.equal(c.redisTimeIn(50), now + 5000 + 1 + 50);
    now = 20_000;
    assert.equal(c.redisTimeIn(0), 25_001);
  });

  it('forgets samples beyond the last 8', () => {
    const c = new RedisClock(() => 0);
    c.sample(0, 1, 100);
    for (let i = 1; i <= 8; i++) c.sample(i * 1000, i * 1000 + 10, i * 1000 + 5 + 200);
    assert.equal(c.errorMs, 5, 'the 1 ms sample is gone; the best of the last 8 is 10 ms');
  });
});
