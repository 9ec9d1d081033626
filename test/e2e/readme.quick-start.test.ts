import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { spawnGateway, type GatewayProcess } from '../harness/gateway.js';
import { pollUntil } from '../harness/poll.js';
import { freePort } from '../harness/ports.js';
import { EVENT_TIMEOUT_MS } from '../harness/wait.js';

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

describe('README quick start: its commands, run as written against the default stack', { timeout: 180_000 }, () => {
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
    const from = gw.lines.length;
    const codes = (await sh(commands[5]!)).trim().split(' ');
    assert.equal(codes.length, 12);
    // The burst: the first 10 pass however slowly the loop runs.
    assert.deepEqual(codes.slice(0, 10), Array(10).fill('404'), codes.join(' '));
    // The rest, judged on the gateway's own clock (a busy host runs each curl late, and
    // tokens come back meanwhile): plan free's bucket (burst 10, 5/s) replayed on when the
    // gateway took each request, from its access log (the line's time less its duration).
    const line = await pollUntil(async () => {
      const ls = gw.lines.slice(from).filter((l) => l.msg === 'request' && l.path === '/v1/x');
      return ls.length === 12 ? ls : undefined;
    }, EVENT_TIMEOUT_MS);
    assert.ok(line.value !== undefined, 'an access-log line per request');
    let tokens = 10;
    let last = Number.NaN;
    const judged = line.value.map((l) => {
      const at = Date.parse(l.time as string) - (l.duration_ms as number);
      tokens = Number.isNaN(last) ? tokens : Math.min(10, tokens + 5 * (at - last) / 1000);
      last = at;
      // Within 5 ms of drain of the edge, the two clocks the gateway reads may disagree: its decision stands.
      const status = Math.abs(tokens - 1) < 0.025 ? String(l.status) : tokens >= 1 ? '404' : '429';
      if (status === '404') tokens -= 1;
      return status;
    });
    assert.deepEqual(codes, judged, `the gateway's answers, against the bucket on its own clock (${line.value.map((l) => l.time).join(' ')})`);
    assert.deepEqual(line.value.map((l) => String(l.status)), codes, 'the access log says what curl saw');
  });

  it('the metrics show it', async () => {
    const out = await sh(commands[6]!);
    assert.match(out, /^sluice_requests_total\{/m);
  });
});
