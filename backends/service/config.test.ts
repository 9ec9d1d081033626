import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, FLAGS, envName, parseBackendConfig, usage } from './config.js';
import { tuning } from './tuning.js';

describe('sluice-backend config', () => {
  it('has defaults for everything', () => {
    const c = parseBackendConfig([], {});
    assert.equal(c.port, 7001);
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.resultTtlSeconds, 3600);
    assert.equal(c.queue, 2 * c.concurrency);
    assert.equal(c.resultsDir, undefined);
    assert.equal(c.limits.maxInputPixels, 50_000_000);
    assert.equal(c.limits.allowSvg, false);
    assert.equal(c.sharpCacheMb, 0);
  });

  it('reads flags (both spellings) and env, the flag winning', () => {
    const c = parseBackendConfig(
      ['--port', '9000', '--queue=7', '--allow-svg', '--fetch-allow', '127.0.0.1, ::1', '--no-reexec'],
      { SLUICE_BACKEND_QUEUE: '3', SLUICE_BACKEND_RESULT_TTL: '5', SLUICE_BACKEND_MAX_PIXELS: '1000' },
    );
    assert.equal(c.port, 9000);
    assert.equal(c.queue, 7);
    assert.equal(c.resultTtlSeconds, 5);
    assert.equal(c.limits.maxInputPixels, 1000);
    assert.equal(c.limits.allowSvg, true);
    assert.deepEqual(c.fetch.allow, ['127.0.0.1', '::1']);
    assert.equal(c.reexec, false);
  });

  it('errors name the flag and its variable', () => {
    const cases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
      [['--port', 'abc'], {}, /--port \(SLUICE_BACKEND_PORT\)/],
      [['--port', '70000'], {}, /--port/],
      [['--concurrency', '0'], {}, /--concurrency/],
      [[], { SLUICE_BACKEND_RESULT_TTL: '-1' }, /--result-ttl \(SLUICE_BACKEND_RESULT_TTL\).*env/],
      [['--allow-svg=maybe'], {}, /--allow-svg/],
      [['--bogus', '1'], {}, /unknown flag --bogus/],
      [['--queue'], {}, /--queue: missing value/],
      [['--webhook-secret', 'short'], {}, /--webhook-secret/],
    ];
    for (const [argv, env, re] of cases) {
      assert.throws(() => parseBackendConfig(argv, env), (e: unknown) => e instanceof ConfigError && re.test(e.message), argv.join(' '));
    }
  });

  it('every flag is in --help with its env variable', () => {
    const text = usage();
    for (const f of FLAGS) assert.ok(text.includes(`--${f.flag}`) && text.includes(envName(f.flag)), f.flag);
  });

  it('tuning: sets UV_THREADPOOL_SIZE and an allocator, and respects what the operator set', () => {
    const c = parseBackendConfig(['--concurrency', '3'], {});
    const t = tuning(c, {});
    assert.equal(t.env.UV_THREADPOOL_SIZE, '7');
    assert.ok(t.reexecNeeded);
    assert.ok(t.env.LD_PRELOAD?.includes('jemalloc') || t.env.MALLOC_ARENA_MAX === '2');
    const mine = tuning(c, { UV_THREADPOOL_SIZE: '7', MALLOC_ARENA_MAX: '4' });
    assert.equal(mine.reexecNeeded, false);
    assert.equal(mine.env.MALLOC_ARENA_MAX, '4');
    assert.equal(tuning(c, { SLUICE_BACKEND_JEMALLOC: 'off', UV_THREADPOOL_SIZE: '7' }).env.MALLOC_ARENA_MAX, '2');
  });
});

describe('sluice-backend registration flags', () => {
  it('needs an upstream with --register-redis, a real origin to advertise, and takes the env variable', () => {
    assert.equal(parseBackendConfig([], {}).register, undefined);
    assert.throws(() => parseBackendConfig(['--register-redis', 'redis://127.0.0.1:6379'], {}), /--register-upstream \(SLUICE_BACKEND_REGISTER_UPSTREAM\): is required/);
    assert.throws(() => parseBackendConfig(['--register-upstream', 'img'], {}), /only means something with --register-redis/);
    assert.throws(() => parseBackendConfig(['--register-redis', 'redis://x:1', '--register-upstream', 'img', '--host', '0.0.0.0'], {}), /--advertise-url.*wildcard/);
    assert.throws(() => parseBackendConfig(['--register-redis', 'redis://x:1', '--register-upstream', 'img', '--advertise-url', 'http://h:1/x'], {}), /--advertise-url/);
    const c = parseBackendConfig(['--register-upstream', 'img', '--weight', '3'], { SLUICE_BACKEND_REGISTER_REDIS: 'redis://127.0.0.1:6379' });
    assert.deepEqual(c.register, { redisUrl: 'redis://127.0.0.1:6379', upstream: 'img', prefix: 'sluice:', advertiseUrl: undefined, weight: 3, ttlMs: 1000 });
  });
});
