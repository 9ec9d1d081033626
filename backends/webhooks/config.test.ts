import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../../common/errors.js';
import { FLAGS, parseWebhooksConfig, usage } from './config.js';
import { queuePrefix } from './queue.js';
import { DEFAULT_SCHEDULE_MS } from './schedule.js';

const MASTER = Buffer.alloc(32, 1).toString('base64');
const env = { SLUICE_MASTER_KEY: MASTER };

describe('sluice-webhooks config', () => {
  it('has defaults for everything but the queue and the master key', () => {
    const c = parseWebhooksConfig(['--redis', 'redis://127.0.0.1:6379'], env);
    assert.deepEqual(c.schedule, DEFAULT_SCHEDULE_MS);
    assert.equal(c.adminHost, '127.0.0.1');
    assert.equal(c.adminPort, 9091);
    assert.equal(c.lockMs, 10_000);
    assert.equal(c.stalledIntervalMs, 5000);
    assert.equal(c.deadLetterTtlSeconds, 604_800);
    assert.equal(c.disableAfterMs, 432_000_000);
    assert.deepEqual(c.adminTokens, []);
    assert.equal(c.adminMaxAuthFailures, 10);
    assert.equal(c.auditRetentionDays, 90);
    assert.equal(queuePrefix(c.store), '{sluice:webhooks}', 'one hash tag: every key in one Cluster slot');
  });

  it('reads flags and SLUICE_WEBHOOKS_* variables, the store of a gateway config, and a custom schedule', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-whcfg-'));
    try {
      writeFileSync(join(dir, 'g.yaml'), 'store: {kind: redis, mode: cluster, nodes: ["redis://127.0.0.1:7000"], prefix: "eu:"}');
      const c = parseWebhooksConfig(['--store', join(dir, 'g.yaml'), '--retry-schedule-ms', '10, 20'], { ...env, SLUICE_WEBHOOKS_CONCURRENCY: '3', SLUICE_WEBHOOKS_ADMIN_TOKEN: 'x'.repeat(16), SLUICE_WEBHOOKS_ADMIN_TOKENS: `ops=${'a'.repeat(64)}, ci=${'b'.repeat(64)}` });
      assert.equal(c.store.mode, 'cluster');
      assert.equal(queuePrefix(c.store), '{eu:webhooks}');
      assert.deepEqual(c.schedule, [10, 20]);
      assert.equal(c.concurrency, 3);
      // The plain token is hashed at once; the others are given as digests.
      assert.deepEqual(c.adminTokens, [
        { label: 'admin', digest: createHash('sha256').update('x'.repeat(16)).digest('hex') },
        { label: 'ops', digest: 'a'.repeat(64) }, { label: 'ci', digest: 'b'.repeat(64) },
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('errors name the flag, the variable or the secret', () => {
    const cases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
      [[], env, /--redis \(SLUICE_WEBHOOKS_REDIS\) or --store \(SLUICE_WEBHOOKS_STORE\): one is required/],
      [['--redis', 'redis://x'], {}, /SLUICE_MASTER_KEY: required/],
      [['--redis', 'redis://x'], { SLUICE_MASTER_KEY: 'c2hvcnQ=' }, /SLUICE_MASTER_KEY: must be 32 bytes/],
      [['--redis', 'redis://x'], { ...env, SLUICE_WEBHOOKS_ADMIN_TOKENS: 'ops=nothex' }, /SLUICE_WEBHOOKS_ADMIN_TOKENS: each entry is label=/],
      [['--redis', 'redis://x'], { ...env, SLUICE_WEBHOOKS_ADMIN_TOKEN: 'x'.repeat(16), SLUICE_WEBHOOKS_ADMIN_TOKENS: `admin=${'a'.repeat(64)}` }, /label admin is used twice/],
      [['--redis', 'redis://x', '--retry-schedule-ms', '5,soon'], env, /--retry-schedule-ms/],
      [['--redis', 'redis://x', '--lock-ms', '10'], env, /--lock-ms \(SLUICE_WEBHOOKS_LOCK_MS\)/],
      [['--redis', 'redis://x'], { ...env, SLUICE_WEBHOOKS_ADMIN_TOKEN: 'short' }, /SLUICE_WEBHOOKS_ADMIN_TOKEN/],
    ];
    for (const [argv, e, re] of cases) {
      assert.throws(() => parseWebhooksConfig(argv, e), (err: unknown) => err instanceof ConfigError && re.test(err.message), argv.join(' '));
    }
  });

  it('every flag is in --help with its variable; the CLI exits 2 on a bad config without printing the master key', async () => {
    const text = usage();
    for (const flag of Object.keys(FLAGS.properties)) assert.ok(text.includes(`--${flag}`) && text.includes(`SLUICE_WEBHOOKS_${flag.toUpperCase().replace(/-/g, '_')}`), flag);
    const cli = fileURLToPath(new URL('./cli.js', import.meta.url));
    const bad = 'bm90LWVub3VnaA==';
    const child = spawn(process.execPath, [cli, '--redis', 'redis://127.0.0.1:1'], { env: { ...process.env, SLUICE_MASTER_KEY: bad }, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const [code] = await once(child, 'exit');
    assert.equal(code, 2);
    assert.match(err, /SLUICE_MASTER_KEY/);
    assert.ok(!err.includes('bm90LWVub3VnaA'), 'the secret is not echoed');
  });
});
