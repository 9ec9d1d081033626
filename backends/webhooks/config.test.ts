import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../../common/errors.js';
import { FLAGS, parseWebhooksConfig, usage } from './config.js';
import { queuePrefix } from '../net/webhook-queue.js';
import { DEFAULT_SCHEDULE_MS } from './schedule.js';

const SECRET = `whsec_${Buffer.alloc(32, 1).toString('base64')}`;
const env = { SLUICE_WEBHOOK_SECRET: SECRET };

describe('sluice-webhooks config', () => {
  it('has defaults for everything but the queue and the secret', () => {
    const c = parseWebhooksConfig(['--redis', 'redis://127.0.0.1:6379'], env);
    assert.deepEqual(c.schedule, DEFAULT_SCHEDULE_MS);
    assert.equal(c.adminHost, '127.0.0.1');
    assert.equal(c.adminPort, 9091);
    assert.equal(c.lockMs, 10_000);
    assert.equal(c.stalledIntervalMs, 5000);
    assert.equal(c.deadLetterTtlSeconds, 604_800);
    assert.equal(c.disableAfterMs, 432_000_000);
    assert.equal(c.adminToken, undefined);
    assert.equal(queuePrefix(c.store), '{sluice:webhooks}', 'one hash tag: every key in one Cluster slot');
  });

  it('reads flags and SLUICE_WEBHOOKS_* variables, the store of a gateway config, and a custom schedule', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-whcfg-'));
    try {
      writeFileSync(join(dir, 'g.yaml'), 'store: {kind: redis, mode: cluster, nodes: ["redis://127.0.0.1:7000"], prefix: "eu:"}');
      const c = parseWebhooksConfig(['--store', join(dir, 'g.yaml'), '--retry-schedule-ms', '10, 20'], { ...env, SLUICE_WEBHOOKS_CONCURRENCY: '3', SLUICE_WEBHOOKS_ADMIN_TOKEN: 'x'.repeat(16) });
      assert.equal(c.store.mode, 'cluster');
      assert.equal(queuePrefix(c.store), '{eu:webhooks}');
      assert.deepEqual(c.schedule, [10, 20]);
      assert.equal(c.concurrency, 3);
      assert.equal(c.adminToken, 'x'.repeat(16));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('errors name the flag, the variable or the secret', () => {
    const cases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
      [[], env, /--redis \(SLUICE_WEBHOOKS_REDIS\) or --store \(SLUICE_WEBHOOKS_STORE\): one is required/],
      [['--redis', 'redis://x'], {}, /SLUICE_WEBHOOK_SECRET: required/],
      [['--redis', 'redis://x'], { SLUICE_WEBHOOK_SECRET: 'whsec_short' }, /SLUICE_WEBHOOK_SECRET: secret 1 decodes to/],
      [['--redis', 'redis://x', '--retry-schedule-ms', '5,soon'], env, /--retry-schedule-ms/],
      [['--redis', 'redis://x', '--lock-ms', '10'], env, /--lock-ms \(SLUICE_WEBHOOKS_LOCK_MS\)/],
      [['--redis', 'redis://x'], { ...env, SLUICE_WEBHOOKS_ADMIN_TOKEN: 'short' }, /SLUICE_WEBHOOKS_ADMIN_TOKEN/],
    ];
    for (const [argv, e, re] of cases) {
      assert.throws(() => parseWebhooksConfig(argv, e), (err: unknown) => err instanceof ConfigError && re.test(err.message), argv.join(' '));
    }
  });

  it('every flag is in --help with its variable; the CLI exits 2 on a bad config without printing the secret', async () => {
    const text = usage();
    for (const flag of Object.keys(FLAGS.properties)) assert.ok(text.includes(`--${flag}`) && text.includes(`SLUICE_WEBHOOKS_${flag.toUpperCase().replace(/-/g, '_')}`), flag);
    const cli = fileURLToPath(new URL('./cli.js', import.meta.url));
    const bad = 'whsec_bm90LWVub3VnaA==';
    const child = spawn(process.execPath, [cli, '--redis', 'redis://127.0.0.1:1'], { env: { ...process.env, SLUICE_WEBHOOK_SECRET: bad }, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const [code] = await once(child, 'exit');
    assert.equal(code, 2);
    assert.match(err, /SLUICE_WEBHOOK_SECRET/);
    assert.ok(!err.includes('bm90LWVub3VnaA'), 'the secret is not echoed');
  });
});
