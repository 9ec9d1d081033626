// Test support for the replay tests: one fixture, run twice for real — by nginx as
// written (only what an unprivileged test needs changed: ports, runtime paths, addresses
// of the backends) and by Sluice with what `sluice import-nginx` made of the same file.

import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { CLI, spawnGateway, type GatewayProcess } from './gateway.js';
import { NGINX_RUN_PATHS, startNginx, type NginxProcess } from './nginx.js';
import { startTestBackend, type TestBackend } from './test-backend.js';
import { NGINX_JUDGE_LOG_FORMAT } from './limit-req-judge.js';

// Tests run from dist/; the fixtures stay in the source tree.
export const FIXTURES = fileURLToPath(new URL('../../../gateway/import-nginx/fixtures/', import.meta.url));

export interface PreparedFixture {
  /** The fixture's main file as a startNginx template (listens on @@LISTEN@@). */
  readonly nginxTemplate: string;
  /** The imported Sluice config, on free ports, pointing at the same backends. */
  readonly sluiceConfig: Record<string, any>;
  cleanup(): void;
}

/**
 * `addresses` maps each `host:port` the fixture names to the local `127.0.0.1:port` that
 * stands in for it, in nginx's files and in the imported config alike. `edit` changes
 * the main file further (what cannot run unprivileged, say TLS).
 */
export async function prepareFixture(name: string, addresses: Record<string, string>, edit: (main: string) => string = (t) => t): Promise<PreparedFixture> {
  const dir = mkdtempSync(join(tmpdir(), `sluice-replay-${name}-`));
  const conf = join(dir, 'conf');
  cpSync(join(FIXTURES, name), conf, { recursive: true });
  // nginx resolves relative includes against its conf prefix, which is startNginx's run
  // dir, not this copy: make them absolute. Every included file gets the addresses too.
  for (const file of filesUnder(conf)) {
    const text = remap(readFileSync(file, 'utf8'), addresses)
      .replace(/^(\s*include\s+)([^;\s]+);/gm, (m, head: string, p: string) => (isAbsolute(p) ? m : `${head}${join(conf, p)};`));
    writeFileSync(file, text);
  }
  // Both sides run the same edited file: nginx as a template, Sluice through the importer.
  const edited = edit(readFileSync(join(conf, 'nginx.conf'), 'utf8'));
  writeFileSync(join(conf, 'nginx.conf'), edited);
  const nginxTemplate = runnable(edited);

  const imported = await importYaml(join(conf, 'nginx.conf'), join(dir, 'imported.yaml'));
  const cfg = parse(imported) as Record<string, any>;
  // Only what a test needs to differ: free ports; access lines, which say when limit_req decided.
  for (const l of cfg.listeners as { port: number }[]) l.port = 0;
  cfg.admin = { host: '127.0.0.1', port: 0 };
  cfg.log = { level: 'info', access: true };
  return { nginxTemplate, sluiceConfig: cfg, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

function remap(text: string, addresses: Record<string, string>): string {
  let out = text;
  for (const [from, to] of Object.entries(addresses)) out = out.replaceAll(from, to);
  return out;
}

/** nginx's access log of its limit_req decisions (test/harness/limit-req-judge.ts), in the run dir. */
export const NGINX_DECISIONS_LOG = 'decisions.log';

/** The main file as nginx can run it unprivileged: our listener, our temp dir, logs there (the access log of decisions). */
function runnable(text: string): string {
  return text
    .replace(/^\s*(user|pid|error_log)\s[^;]*;/gm, '')
    .replace(/access_log [^;]*;/g, '')
    .replace(/listen\s+[^\s;]+/, 'listen @@LISTEN@@')
    .replace(/^http \{/m, `http {\n    ${NGINX_RUN_PATHS.replace('access_log off;', '')}\n    ${NGINX_JUDGE_LOG_FORMAT}\n    access_log @@RUN_DIR@@/${NGINX_DECISIONS_LOG} limit_req_judge;`)
    .replace(/^/, 'pid @@RUN_DIR@@/nginx.pid;\nerror_log @@RUN_DIR@@/error.log info;\n');
}

function importYaml(fixture: string, out: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, 'import-nginx', fixture, '--out', out], { timeout: 15_000 }, (err, _o, stderr) => {
      if (err !== null) reject(new Error(`import-nginx failed: ${stderr}`));
      else resolve(readFileSync(out, 'utf8'));
    });
  });
}

export interface ReplayPair {
  readonly nginx: NginxProcess;
  readonly sluice: GatewayProcess;
  /** One local backend per fixture address, in the order given; paths under holdPrefix are held open. */
  readonly backends: readonly TestBackend[];
  stop(): Promise<void>;
}

/** nginx running the fixture and Sluice running its import, side by side, on the same local backends (see prepareFixture). */
export async function startPair(name: string, fixtureAddresses: readonly string[], holdPrefix: string, edit?: (main: string) => string): Promise<ReplayPair> {
  const backends = await Promise.all(fixtureAddresses.map(() => startTestBackend(holdPrefix)));
  const fixture = await prepareFixture(name, Object.fromEntries(fixtureAddresses.map((a, i) => [a, new URL(backends[i]!.url).host])), edit);
  const [nginx, sluice] = await Promise.all([startNginx({ template: fixture.nginxTemplate }), spawnGateway(fixture.sluiceConfig)]);
  return {
    nginx, sluice, backends,
    async stop() {
      await Promise.all([nginx.stop(), sluice.stop()]);
      await Promise.all(backends.map((b) => b.close()));
      fixture.cleanup();
    },
  };
}
