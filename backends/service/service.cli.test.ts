import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { WebhookKeyring } from '../../common/webhook-keys/keyring.js';
import { newMasterKeyText, parseMasterKey } from '../../common/webhook-keys/master-key.js';
import { DirKeyringStorage } from '../../common/webhook-keys/storage.js';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { Webhook } from 'standardwebhooks';

const CLI = fileURLToPath(new URL('../cli.js', import.meta.url));
const PHOTO = readFileSync(fileURLToPath(new URL('../../../node_modules/@vladmandic/face-api/demo/sample2.jpg', import.meta.url)));

function start(args: string[], env: NodeJS.ProcessEnv = {}, command: string[] = [process.execPath, CLI]) {
  const child = spawn(command[0]!, [...command.slice(1), ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const listening = new Promise<Record<string, unknown>>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout });
    rl.on('line', (line) => {
      try {
        const j = JSON.parse(line) as Record<string, unknown>;
        if (j.msg === 'backend listening') resolve(j);
      } catch { /* not a log line */ }
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)));
  });
  // Tests that expect an early exit never await it.
  listening.catch(() => {});
  return { child, listening, stderr: () => stderr };
}

describe('sluice-backend CLI', () => {
  it('refuses a bad flag, naming it, with exit code 2', async () => {
    const p = start(['--port', '0', '--queue', 'lots']);
    const [code] = await once(p.child, 'exit');
    assert.equal(code, 2);
    assert.match(p.stderr(), /--queue \(SLUICE_BACKEND_QUEUE\)/);
  });

  it('starts tuned (allocator, UV_THREADPOOL_SIZE, sharp), serves, fetches from an allowed host, delivers a signed webhook, and stops on SIGTERM', async () => {
    // In-process delivery signs with the customer's key from a memory-store gateway's key directory.
    const master = newMasterKeyText();
    const keysDir = mkdtempSync(join(tmpdir(), 'sluice-cli-keys-'));
    const secret = (await new WebhookKeyring(new DirKeyringStorage(keysDir), { current: parseMasterKey(master), previous: [] }).state('acme')).key;
    const images = createServer((_req, res) => { res.writeHead(200, { 'content-type': 'image/jpeg' }); res.end(PHOTO); });
    const hooks: Array<{ headers: Record<string, string | string[] | undefined>; body: string }> = [];
    let hookArrived!: () => void;
    const hookPromise = new Promise<void>((r) => { hookArrived = r; });
    const hookServer = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => { body += d.toString(); });
      req.on('end', () => { hooks.push({ headers: req.headers, body }); res.end('ok'); hookArrived(); });
    });
    await new Promise<void>((r) => images.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => hookServer.listen(0, '127.0.0.1', r));
    const p = start(['--port', '0', '--face-workers', '0', '--concurrency', '2', '--fetch-allow', '127.0.0.1', '--webhook-keys-dir', keysDir], { SLUICE_MASTER_KEY: master });
    try {
      const info = await p.listening;
      assert.equal(info.uv_threadpool_size, 6);
      assert.equal(info.sharp_concurrency, 1);
      assert.match(String(info.allocator), /jemalloc|MALLOC_ARENA_MAX=2/);
      assert.equal(info.node_flags, '--initial-old-space-size=128');
      const base = `http://127.0.0.1:${info.port as number}`;
      const health = await request(`${base}/healthz`);
      assert.equal(health.statusCode, 200);
      assert.equal(health.headers['x-backend-load'], 'inflight=0; queued=0; capacity=6');
      await health.body.dump();

      const imgUrl = `http://127.0.0.1:${(images.address() as AddressInfo).port}/photo.jpg`;
      const fetched = await request(`${base}/v1/images/fetch`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ url: imgUrl, options: { resize: { width: 300 }, format: 'webp' } }),
      });
      assert.equal(fetched.statusCode, 200);
      const r = await fetched.body.json() as { output: { format: string; width: number } };
      assert.equal(r.output.format, 'webp');
      assert.equal(r.output.width, 300);

      const hookUrl = `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/hook`;
      const accepted = await request(`${base}/v1/images`, {
        method: 'POST', body: PHOTO, headers: { 'x-sluice-customer': 'acme', 'x-options': JSON.stringify({ resize: { width: 200 }, format: 'jpeg', webhook: hookUrl }) },
      });
      assert.equal(accepted.statusCode, 202);
      const acc = await accepted.body.json() as { id: string; status: string };
      assert.equal(acc.status, 'accepted');
      await hookPromise;
      const hook = hooks[0]!;
      const payload = JSON.parse(hook.body) as { id: string; status: string; output: { width: number; url: string } };
      assert.equal(payload.id, acc.id);
      assert.equal(payload.status, 'succeeded');
      assert.equal(payload.output.width, 200);
      // Verified by the standardwebhooks package, not by code of ours.
      assert.deepEqual(new Webhook(secret).verify(hook.body, hook.headers as Record<string, string>), payload);
      const got = await request(`${base}${payload.output.url}`);
      assert.equal(got.statusCode, 200);
      assert.equal(got.headers['content-type'], 'image/jpeg');
      await got.body.dump();
    } finally {
      p.child.kill('SIGTERM');
      const [code] = p.child.exitCode !== null ? [p.child.exitCode] : await once(p.child, 'exit');
      images.close();
      hookServer.close();
      assert.equal(code, 0, p.stderr());
    }
  });

  it('start-backend.sh gives node the V8 heap flag of --heap-initial-mb, or none for 0', async () => {
    const script = fileURLToPath(new URL('../../../backends/start-backend.sh', import.meta.url));
    // The script runs `node` from PATH: this one (Node 24), first.
    const env = { PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}` };
    for (const [args, flags] of [[['--heap-initial-mb', '64'], '--initial-old-space-size=64'], [['--heap-initial-mb=0'], ''], [[], '--initial-old-space-size=128']] as const) {
      const p = start(['--port', '0', '--face-workers', '0', ...args], env, ['sh', script]);
      try {
        const info = await p.listening;
        assert.equal(info.node_flags, flags);
        // exec'd, no launcher: the logging process is the one started.
        assert.equal(info.pid, p.child.pid);
      } finally {
        p.child.kill('SIGTERM');
        if (p.child.exitCode === null && p.child.signalCode === null) await once(p.child, 'exit');
      }
    }
  });
});
