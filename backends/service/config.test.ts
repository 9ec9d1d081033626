import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../common/errors.js';
import { FLAGS, envName, parseBackendConfig, usage } from './config.js';
import { storeConfigOf } from '../../common/store-config.js';
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
      [[], { SLUICE_MASTER_KEY: 'short' }, /SLUICE_MASTER_KEY: must be 32 bytes/],
      [['--webhook-redis', 'http://x'], {}, /--webhook-redis \(SLUICE_BACKEND_WEBHOOK_REDIS\): must start with redis:\/\//],
      [['--webhook-redis', 'redis://x', '--webhook-store', 'f.yaml'], {}, /--webhook-store.*not both/],
    ];
    for (const [argv, env, re] of cases) {
      assert.throws(() => parseBackendConfig(argv, env), (e: unknown) => e instanceof ConfigError && re.test(e.message), argv.join(' '));
    }
  });

  it('every flag is in --help with its env variable', () => {
    const text = usage();
    for (const flag of Object.keys(FLAGS.properties)) assert.ok(text.includes(`--${flag}`) && text.includes(envName(flag)), flag);
    assert.match(text, /--port <int>\n {6}TCP port \(0 = any free port\)\. Default 7001\. \[env SLUICE_BACKEND_PORT\]/, 'the default comes from the schema');
  });

  it('every problem at once, each naming its flag, its variable and where the value came from', () => {
    assert.throws(() => parseBackendConfig(['--port', '70000', '--queue=lots', '--allow-svg=maybe'], { SLUICE_BACKEND_CONCURRENCY: '0', SLUICE_MASTER_KEY: 'short' }),
      (e: unknown) => e instanceof ConfigError && assert.deepEqual(e.errors, [
        '--port (SLUICE_BACKEND_PORT): must be <= 65535, got 70000 (from --port)',
        '--concurrency (SLUICE_BACKEND_CONCURRENCY): must be >= 1, got 0 (from env SLUICE_BACKEND_CONCURRENCY)',
        '--queue (SLUICE_BACKEND_QUEUE): must be a whole number, got "lots" (from --queue)',
        '--allow-svg: must be true or false, got "maybe"',
      ]) === undefined,
      'the master key is checked once the flags are right');
    assert.throws(() => parseBackendConfig(['--results-s3-endpoint', 'http://x:1', '--register-upstream', 'img'], { SLUICE_MASTER_KEY: 'short' }),
      (e: unknown) => e instanceof ConfigError && e.errors.length === 3);
    assert.equal(parseBackendConfig(['--allow-svg=true', '--reexec=no'], {}).limits.allowSvg, true);
    assert.equal(parseBackendConfig(['--reexec=no'], {}).reexec, false);
  });

  it('tuning: sets UV_THREADPOOL_SIZE and an allocator, and respects what the operator set', () => {
    const c = parseBackendConfig(['--concurrency', '3'], {});
    const t = tuning(c, {});
    assert.equal(t.env.UV_THREADPOOL_SIZE, '7');
    assert.ok(t.reexecNeeded);
    assert.ok(t.env.LD_PRELOAD?.includes('jemalloc') || t.env.MALLOC_ARENA_MAX === '2');
    const mine = tuning(c, { UV_THREADPOOL_SIZE: '7', MALLOC_ARENA_MAX: '4' }, ['--initial-old-space-size=128']);
    assert.equal(mine.reexecNeeded, false);
    assert.equal(mine.env.MALLOC_ARENA_MAX, '4');
    assert.equal(tuning(c, { SLUICE_BACKEND_JEMALLOC: 'off', UV_THREADPOOL_SIZE: '7' }).env.MALLOC_ARENA_MAX, '2');
  });

  it('tuning: V8\'s initial old space is a node flag for the re-exec, unless node already has one or it is 0', () => {
    const env = { UV_THREADPOOL_SIZE: '7', MALLOC_ARENA_MAX: '4' };
    const c = parseBackendConfig(['--concurrency', '3'], {});
    assert.equal(c.heapInitialMb, 128);
    const fresh = tuning(c, env, []);
    assert.deepEqual(fresh.execArgv, ['--initial-old-space-size=128']);
    assert.ok(fresh.reexecNeeded);
    // The re-exec'd child (or an operator's own flag) has it: nothing to add, no second re-exec.
    const child = tuning(c, env, ['--initial-old-space-size=64']);
    assert.deepEqual(child.execArgv, []);
    assert.equal(child.reexecNeeded, false);
    const off = tuning(parseBackendConfig(['--concurrency', '3', '--heap-initial-mb', '0'], {}), env, []);
    assert.deepEqual(off.execArgv, []);
    assert.equal(off.reexecNeeded, false);
    assert.equal(parseBackendConfig([], { SLUICE_BACKEND_HEAP_INITIAL_MB: '256' }).heapInitialMb, 256);
  });
});

describe('sluice-backend registration flags', () => {
  it('needs an upstream with --register-redis, a real origin to advertise, and takes the env variable', () => {
    assert.equal(parseBackendConfig([], {}).register, undefined);
    assert.throws(() => parseBackendConfig(['--register-redis', 'redis://127.0.0.1:6379'], {}), /--register-upstream \(SLUICE_BACKEND_REGISTER_UPSTREAM\): is required/);
    assert.throws(() => parseBackendConfig(['--register-upstream', 'img'], {}), /only means something with --register-redis or --register-store/);
    assert.throws(() => parseBackendConfig(['--register-redis', 'redis://x:1', '--register-upstream', 'img', '--host', '0.0.0.0'], {}), /--advertise-url.*wildcard/);
    assert.throws(() => parseBackendConfig(['--register-redis', 'redis://x:1', '--register-upstream', 'img', '--advertise-url', 'http://h:1/x'], {}), /--advertise-url/);
    const c = parseBackendConfig(['--register-upstream', 'img', '--weight', '3'], { SLUICE_BACKEND_REGISTER_REDIS: 'redis://127.0.0.1:6379' });
    assert.deepEqual(c.register, {
      // Every other store field at the gateway's own default.
      store: storeConfigOf({ kind: 'redis', url: 'redis://127.0.0.1:6379' }),
      upstream: 'img', advertiseUrl: undefined, weight: 3, ttlMs: 1000,
    });
  });

  it('--register-store reads the store section of a gateway config file, checked as the gateway checks it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-regstore-'));
    const file = (name: string, text: string): string => { writeFileSync(join(dir, name), text); return join(dir, name); };
    try {
      const sentinel = file('sentinel.yaml', [
        'server: {port: 8080}   # the rest of a gateway config is not read',
        'store: {kind: redis, mode: sentinel, sentinels: ["127.0.0.1:26379"], sentinel_name: main, prefix: "p:", password: pw}',
      ].join('\n'));
      const c = parseBackendConfig(['--register-store', sentinel, '--register-upstream', 'img'], {});
      assert.equal(c.register?.store.mode, 'sentinel');
      assert.deepEqual(c.register?.store.sentinels, [{ host: '127.0.0.1', port: 26379 }]);
      assert.equal(c.register?.store.prefix, 'p:');
      assert.equal(c.register?.store.password, 'pw');
      assert.throws(() => parseBackendConfig(['--register-store', sentinel, '--register-redis', 'redis://x:1', '--register-upstream', 'img'], {}), /not both/);
      assert.throws(() => parseBackendConfig(['--register-store', sentinel, '--register-prefix', 'q:', '--register-upstream', 'img'], {}), /--register-prefix.*store\.prefix/);
      assert.throws(() => parseBackendConfig(['--register-store', file('memory.yaml', 'store: {kind: memory}'), '--register-upstream', 'img'], {}),
        /--register-store .*store\.kind: must be redis/);
      assert.throws(() => parseBackendConfig(['--register-store', file('bad.yaml', 'store: {kind: redis, mode: cluster}'), '--register-upstream', 'img'], {}),
        /--register-store .*store\.nodes: is required/);
      assert.throws(() => parseBackendConfig(['--register-store', join(dir, 'missing.yaml'), '--register-upstream', 'img'], {}), /--register-store .*missing\.yaml/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('sluice-backend webhook flags', () => {
  it('--webhook-redis (or its env) or --webhook-store picks the queue; --webhook-keys-* and SLUICE_MASTER_KEY the in-process keys', () => {
    const none = parseBackendConfig([], {});
    assert.equal(none.webhook.queue, undefined);
    assert.equal(none.webhook.keyring, undefined);
    assert.equal(none.webhook.master, undefined);
    const master = Buffer.alloc(32, 7).toString('base64');
    const env = parseBackendConfig([], { SLUICE_BACKEND_WEBHOOK_REDIS: 'redis://127.0.0.1:6379', SLUICE_MASTER_KEY: master });
    assert.equal(env.webhook.queue?.url, 'redis://127.0.0.1:6379');
    assert.equal(env.webhook.queue?.prefix, 'sluice:');
    assert.deepEqual(env.webhook.master?.current.key, Buffer.alloc(32, 7));
    assert.deepEqual(parseBackendConfig(['--webhook-keys-dir', '/tmp/k'], {}).webhook.keyring, { kind: 'dir', dir: '/tmp/k' });
    assert.equal(parseBackendConfig(['--webhook-keys-redis', 'redis://127.0.0.1:6390'], {}).webhook.keyring?.kind, 'redis');
    assert.throws(() => parseBackendConfig([], { SLUICE_MASTER_KEY: 'short' }), /SLUICE_MASTER_KEY: must be 32 bytes/);
    assert.throws(() => parseBackendConfig(['--webhook-keys-dir', '/tmp/k', '--webhook-keys-redis', 'redis://x:1'], {}), /one --webhook-keys-\* source/);
    const dir = mkdtempSync(join(tmpdir(), 'sluice-whstore-'));
    try {
      writeFileSync(join(dir, 'c.yaml'), 'store: {kind: redis, mode: cluster, nodes: ["redis://127.0.0.1:7000"], prefix: "q:"}');
      const c = parseBackendConfig(['--webhook-store', join(dir, 'c.yaml')], {});
      assert.equal(c.webhook.queue?.mode, 'cluster');
      assert.equal(c.webhook.queue?.prefix, 'q:');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('sluice-backend results in S3', () => {
  it('--results-s3-bucket with its region, prefix, endpoint and path style; checked at start', () => {
    assert.equal(parseBackendConfig([], {}).resultsS3, undefined);
    const c = parseBackendConfig(['--results-s3-bucket', 'my-results', '--results-s3-endpoint', 'http://127.0.0.1:9000', '--results-s3-path-style'], { SLUICE_BACKEND_RESULTS_S3_REGION: 'eu-west-1' });
    assert.deepEqual(c.resultsS3, { bucket: 'my-results', region: 'eu-west-1', prefix: 'results/', endpoint: 'http://127.0.0.1:9000', forcePathStyle: true });
    assert.throws(() => parseBackendConfig(['--results-s3-bucket', 'Bad_Bucket'], {}), /--results-s3-bucket \(SLUICE_BACKEND_RESULTS_S3_BUCKET\): not a valid bucket name/);
    assert.throws(() => parseBackendConfig(['--results-s3-bucket', 'ok-bucket', '--results-dir', '/tmp/x'], {}), /not both/);
    assert.throws(() => parseBackendConfig(['--results-s3-endpoint', 'http://x:1'], {}), /only means something with --results-s3-bucket/);
    assert.throws(() => parseBackendConfig(['--results-s3-bucket', 'ok-bucket', '--results-s3-endpoint', 'http://x:1/path'], {}), /--results-s3-endpoint.*origin/);
  });
});
