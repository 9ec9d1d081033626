import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { spawnGateway, type GatewayProcess } from '../harness/gateway.js';
import { freePort } from '../harness/ports.js';

// The README's quick start, run as written: its curl block, line by line, in bash, against
// the default stack (config/sluice.yaml as `npm start` runs it). Only the ports move, so the
// test can run beside others, and `<id>` becomes the id the first upload returned.

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const CONFIG = readFileSync(join(ROOT, 'config/sluice.yaml'), 'utf8');
const run = promisify(execFile);

/** The first ```sh block under "## Quick start" that uses curl, as one command per entry. */
function quickStartCommands(): string[] {
  const section = README.split('\n## Quick start\n')[1]?.split('\n## ')[0] ?? '';
  const block = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.includes('curl'));
  assert.ok(block !== undefined, 'README.md "Quick start" has a ```sh block with curl commands');
  return block.replace(/\\\n\s*/g, ' ').split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter((l) => l !== '');
}

describe('README quick start: its commands, run as written against the default stack', { timeout: 120_000 }, () => {
  let gw: GatewayProcess;
  const cwd = mkdtempSync(join(tmpdir(), 'sluice-readme-'));
  const commands = quickStartCommands();
  let id = '';

  before(async () => {
    gw = await spawnGateway(CONFIG, {
      SLUICE_PORT: '0', SLUICE_ADMIN_PORT: '0',
      SLUICE_BACKEND_PORT_1: String(await freePort()), SLUICE_BACKEND_PORT_2: String(await freePort()),
    });
  });
  after(async () => { await gw?.stop('SIGINT'); });

  // The photo path in the README is relative to the repository; the commands run in a temp dir.
  const setup = commands[0]!.replace(/^photo=/, `photo=${ROOT}`);
  const sh = async (cmd: string): Promise<string> => {
    const script = `${setup}\n${cmd.replaceAll('localhost:8080', `127.0.0.1:${gw.port}`).replaceAll('localhost:9090', `127.0.0.1:${gw.adminPort}`).replaceAll('<id>', id)}`;
    const { stdout } = await run('bash', ['-c', script], { cwd, maxBuffer: 16 << 20 });
    return stdout;
  };
  it('has the commands this test knows how to judge, in order', () => {
    assert.match(commands[0]!, /^photo=/);
    assert.equal(commands.length, 7, commands.join('\n'));
  });

  it('an upload as demo-pro answers JSON with input, output, savings and a result URL', async () => {
    const out = await sh(commands[1]!);
    const body = JSON.parse(out) as { id: string; output?: { format: string; url: string }; savings: unknown };
    assert.ok(body.output !== undefined, out);
    assert.equal(body.output.format, 'webp');
    assert.ok(body.savings !== undefined);
    id = body.output.url.split('/').pop()!;
    assert.match(id, /^[A-Za-z0-9_-]{22,}$/);
  });

  it('the result downloads without a key', async () => {
    await sh(commands[2]!);
    const out = readFileSync(join(cwd, 'out.webp'));
    assert.equal(out.subarray(8, 12).toString('latin1'), 'WEBP');
  });

  it('detect finds faces', async () => {
    const body = JSON.parse(await sh(commands[3]!)) as { faces: unknown[] };
    assert.ok(body.faces.length > 0);
  });

  it('no key: 401 with the JSON error', async () => {
    const out = await sh(commands[4]!);
    assert.match(out, /^HTTP\/1\.1 401 /);
    assert.match(out, /"code":"unauthorized"/);
  });

  it('demo-free: 404 until its burst of 10 is spent, then 429', async () => {
    const t0 = performance.now();
    const codes = (await sh(commands[5]!)).trim().split(' ');
    const elapsed = (performance.now() - t0) / 1000;
    assert.equal(codes.length, 12);
    // Plan free: burst 10, 5/s. Tokens refill while the loop runs, so what may pass is
    // burst + rate x elapsed (the loop's own wall time bounds the time the gateway saw).
    const admitted = codes.filter((c) => c === '404').length;
    assert.ok(admitted >= 10 && admitted <= 10 + Math.floor(5 * elapsed) + 1, `${admitted} admitted in ${elapsed.toFixed(2)} s: ${codes.join(' ')}`);
    assert.ok(codes.every((c) => c === '404' || c === '429'), codes.join(' '));
    assert.deepEqual(codes.slice(0, 10), Array(10).fill('404'), codes.join(' '));
    if (elapsed < 0.4) assert.ok(codes.includes('429'), `no 429 in ${elapsed.toFixed(2)} s: ${codes.join(' ')}`);
  });

  it('the metrics show it', async () => {
    const out = await sh(commands[6]!);
    assert.match(out, /^sluice_requests_total\{/m);
  });
});
