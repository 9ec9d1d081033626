import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { startBackend } from '../../test/harness/backend.js';
import { ADMIN_TOKEN, testConfig } from '../../test/harness/config.js';
import { CLI, spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { freePort } from '../../test/harness/ports.js';

interface Run { readonly code: number | null; readonly stdout: string; readonly stderr: string }
interface Seen { readonly method: string; readonly url: string; readonly body: unknown; readonly status: number; readonly answer: unknown }

/** `sluice admin ARGS` as a child process, as an operator would run it. */
async function cli(args: readonly string[], env: NodeJS.ProcessEnv): Promise<Run> {
  const child = spawn(process.execPath, [CLI, 'admin', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const [code] = await once(child, 'close') as [number | null];
  return { code, stdout, stderr };
}

/** Forwards to the gateway's admin port and keeps every request and answer the CLI exchanged. */
async function recordingProxy(target: string, seen: Seen[]): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString();
      void request(`${target}${req.url}`, {
        method: req.method as 'GET', headers: req.headers as Record<string, string>, body: text === '' ? undefined : text,
      }).then(async (r) => {
        const answer = await r.body.text();
        seen.push({ method: req.method!, url: req.url!, body: text === '' ? undefined : JSON.parse(text), status: r.statusCode, answer: answer === '' ? undefined : JSON.parse(answer) });
        res.writeHead(r.statusCode, { 'content-type': String(r.headers['content-type'] ?? 'application/json') });
        res.end(answer);
      });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

// A minimal reader of the shipped OpenAPI document: enough to say whether a request and
// its answer are described (path, method, query parameters, required and known fields).
type Schema = { $ref?: string; type?: string | string[]; required?: string[]; properties?: Record<string, Schema>; additionalProperties?: boolean; items?: Schema };
interface Operation { parameters?: { name: string; in: string; required?: boolean }[]; requestBody?: { required?: boolean; content: Record<string, { schema: Schema }> }; responses: Record<string, { content?: Record<string, { schema: Schema }> }> }
type Doc = { paths: Record<string, Record<string, Operation> & { parameters?: Operation['parameters'] }>; components: { schemas: Record<string, Schema> } };

function resolve(doc: Doc, s: Schema): Schema {
  return s.$ref === undefined ? s : doc.components.schemas[s.$ref.replace('#/components/schemas/', '')]!;
}

/** Problems with `value` against `schema`: missing required fields, fields it does not allow. */
function problems(doc: Doc, schema: Schema, value: unknown, at: string): string[] {
  const s = resolve(doc, schema);
  if (s.type === 'array' && s.items !== undefined && Array.isArray(value)) return value.flatMap((v, i) => problems(doc, s.items!, v, `${at}[${i}]`));
  if (s.type !== 'object' || typeof value !== 'object' || value === null) return [];
  const o = value as Record<string, unknown>;
  return [
    ...(s.required ?? []).filter((k) => !(k in o)).map((k) => `${at}.${k}: required by the document, missing`),
    ...(s.additionalProperties === false ? Object.keys(o).filter((k) => !(k in (s.properties ?? {}))).map((k) => `${at}.${k}: not in the document`) : []),
    ...Object.entries(s.properties ?? {}).flatMap(([k, p]) => (k in o ? problems(doc, p, o[k], `${at}.${k}`) : [])),
  ];
}

function describedBy(doc: Doc, seen: Seen): { template: string; method: string; problems: string[] } {
  const u = new URL(seen.url, 'http://x');
  const template = Object.keys(doc.paths).find((t) => new RegExp(`^${t.replace(/\{[^}]+\}/g, '[^/]+')}$`).test(u.pathname));
  const method = seen.method.toLowerCase();
  if (template === undefined) return { template: u.pathname, method, problems: [`${seen.method} ${u.pathname}: no path in the document`] };
  const op = doc.paths[template]![method] as Operation | undefined;
  if (op === undefined) return { template, method, problems: [`${seen.method} ${template}: method not in the document`] };
  const params = [...(doc.paths[template]!.parameters ?? []), ...(op.parameters ?? [])];
  const out: string[] = [];
  for (const q of u.searchParams.keys()) if (!params.some((p) => p.in === 'query' && p.name === q)) out.push(`query ${q}: not in the document`);
  const bodySchema = op.requestBody?.content['application/json']?.schema;
  if (op.requestBody?.required === true && seen.body === undefined) out.push('request body: required, none sent');
  if (seen.body !== undefined && bodySchema === undefined) out.push('request body sent, none documented');
  if (bodySchema !== undefined && seen.body !== undefined) out.push(...problems(doc, bodySchema, seen.body, 'body'));
  const response = op.responses[String(seen.status)];
  if (response === undefined) out.push(`status ${seen.status}: not in the document`);
  const answerSchema = response?.content?.['application/json']?.schema;
  if (answerSchema !== undefined && seen.answer !== undefined) out.push(...problems(doc, answerSchema, seen.answer, `answer ${seen.status}`));
  return { template, method, problems: out.map((p) => `${seen.method} ${template}: ${p}`) };
}

describe('sluice admin, end to end against a running gateway', () => {
  let backend: Awaited<ReturnType<typeof startBackend>>;
  let gw: GatewayProcess;
  let proxy: { server: Server; url: string };
  const seen: Seen[] = [];
  let env: NodeJS.ProcessEnv;

  const use = async (key: string): Promise<number> => {
    const r = await request(`${gw.url}/v1/echo`, { headers: { 'x-api-key': key } });
    await r.body.dump();
    return r.statusCode;
  };

  before(async () => {
    backend = await startBackend();
    gw = await spawnGateway(testConfig({ upstreams: [backend.url], plans: { test: { rate: 1000, burst: 1000 }, gold: { rate: 2000, burst: 2000 } } }));
    proxy = await recordingProxy(gw.adminUrl, seen);
    env = { SLUICE_ADMIN_URL: proxy.url, SLUICE_ADMIN_TOKEN: ADMIN_TOKEN };
  });
  after(async () => {
    await gw?.stop();
    await backend?.close();
    proxy?.server.close();
  });

  let digest = '';
  let key = '';

  it('sets and reads a customer', async () => {
    const set = await cli(['customers', 'set', 'acme', '--plan', 'test', '--rate', '50', '--burst', '100', '--json'], env);
    assert.equal(set.code, 0, set.stderr);
    assert.deepEqual(JSON.parse(set.stdout), { id: 'acme', plan: 'test', overrides: { rate: 50, burst: 100 } });
    const get = await cli(['customers', 'get', 'acme'], env);
    assert.equal(get.code, 0, get.stderr);
    assert.match(get.stdout, /^FIELD\s+VALUE$/m);
    assert.match(get.stdout, /^plan\s+test$/m);
    assert.match(get.stdout, /^overrides\.rate\s+50$/m);
    assert.match(get.stdout, /^overrides\.burst\s+100$/m);
  });

  it('creates a key that the gateway then accepts', async () => {
    const created = await cli(['keys', 'create', '--customer', 'acme', '--label', 'ci', '--json'], env);
    assert.equal(created.code, 0, created.stderr);
    const body = JSON.parse(created.stdout) as { key: string; digest: string; customer: string; label: string };
    assert.match(body.key, /^sluice_live_/);
    assert.match(body.digest, /^[0-9a-f]{64}$/);
    assert.equal(body.customer, 'acme');
    assert.equal(body.label, 'ci');
    ({ key, digest } = body);
    assert.equal(await use(key), 200);
    const gold = await cli(['keys', 'create', '--customer', 'acme', '--plan', 'gold', '--json'], env);
    assert.equal(gold.code, 0, gold.stderr);
    assert.equal((JSON.parse(gold.stdout) as { plan: string }).plan, 'gold');
  });

  it('lists the key as a table, and shows usage', async () => {
    const list = await cli(['keys', 'list', '--customer', 'acme'], env);
    assert.equal(list.code, 0, list.stderr);
    const lines = list.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^DIGEST\s+CUSTOMER\s+PLAN\s+LABEL\s+CREATED\s+STATUS\s+EXPIRES\s+LAST-USED$/);
    assert.equal(lines.length, 3);
    assert.ok(lines.some((l) => new RegExp(`^${digest}\\s+acme\\s+-\\s+ci\\s+\\d{4}-\\d\\d-\\d\\dT`).test(l)), list.stdout);
    assert.ok(lines.some((l) => /^[0-9a-f]{64}\s+acme\s+gold\s+-\s+\d{4}-/.test(l)), list.stdout);
    const usage = await cli(['usage', 'acme', '--json'], env);
    assert.equal(usage.code, 0, usage.stderr);
    const u = JSON.parse(usage.stdout) as Record<string, unknown>;
    assert.equal(u.customer, 'acme');
    assert.equal(u.inflight, 0);
    assert.equal(typeof u.day_used, 'number');
    // --url wins over SLUICE_ADMIN_URL (here a port nothing listens on).
    const table = await cli(['usage', 'acme', '--url', proxy.url], { ...env, SLUICE_ADMIN_URL: `http://127.0.0.1:${await freePort()}` });
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^customer\s+acme$/m);
  });

  it('updates a key (allowlist, expiry), rotates one, lists the audit log and rewraps webhook keys', async () => {
    const elsewhere = await cli(['keys', 'update', digest, '--allow', '10.0.0.0/8', '--expires', '30d', '--json'], env);
    assert.equal(elsewhere.code, 0, elsewhere.stderr);
    const updated = JSON.parse(elsewhere.stdout) as { allow: string[]; expires_at: number };
    assert.deepEqual(updated.allow, ['10.0.0.0/8']);
    assert.ok(updated.expires_at > Date.now() + 29 * 86_400_000);
    assert.equal(await use(key), 403, 'this test runs from 127.0.0.1, outside the allowlist');
    assert.equal((await cli(['keys', 'update', digest, '--allow', 'any', '--expires', 'never'], env)).code, 0);
    assert.equal(await use(key), 200);
    assert.equal((await cli(['keys', 'update', digest, '--expires', 'soon'], env)).code, 2, 'a bad --expires is refused before sending');

    const rotated = await cli(['keys', 'rotate', digest, '--grace', '1h', '--json'], env);
    assert.equal(rotated.code, 0, rotated.stderr);
    const r = JSON.parse(rotated.stdout) as { key: string; digest: string; replaces: { digest: string; grace_until: number } };
    assert.equal(r.replaces.digest, digest);
    assert.ok(Math.abs(r.replaces.grace_until - (Date.now() + 3_600_000)) < 60_000);
    assert.equal(await use(r.key), 200);
    const old = await request(`${gw.url}/v1/echo`, { headers: { 'x-api-key': key } });
    await old.body.dump();
    assert.equal(old.statusCode, 200, 'the old key works through its grace');
    assert.match(String(old.headers.deprecation), /^@\d+$/);
    assert.equal(old.headers.sunset, new Date(r.replaces.grace_until).toUTCString());

    const audit = await cli(['audit', '--limit', '5', '--json'], env);
    assert.equal(audit.code, 0, audit.stderr);
    const entries = (JSON.parse(audit.stdout) as { entries: { actor: string; action: string; target: string }[] }).entries;
    assert.deepEqual(entries.slice(0, 3).map((e) => [e.actor, e.action, e.target]), [
      ['admin', 'key.rotate', digest.slice(0, 12)], ['admin', 'key.update', digest.slice(0, 12)], ['admin', 'key.update', digest.slice(0, 12)],
    ]);
    const table = await cli(['audit', '--action', 'customer.put'], env);
    assert.match(table.stdout, /^AT\s+ACTOR\s+SOURCE\s+ACTION\s+TARGET\s+DETAILS$/m);
    assert.match(table.stdout, /\sadmin\s+gateway\s+customer\.put\s+acme\s/);

    const rewrap = await cli(['webhook-keys', 'rewrap', '--json'], env);
    assert.equal(rewrap.code, 0, rewrap.stderr);
    assert.deepEqual(Object.keys(JSON.parse(rewrap.stdout) as object).sort(), ['current', 'master_key', 'rewrapped']);
    ({ key, digest } = r);
  });

  it('revokes the key: the gateway refuses it, a second revoke is "not found"', async () => {
    const r = await cli(['keys', 'revoke', digest], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `revoked ${digest}\n`);
    assert.equal(await use(key), 401);
    const again = await cli(['keys', 'revoke', digest], env);
    assert.equal(again.code, 3);
    assert.match(again.stderr, /404 not_found: no such key/);
    const missing = await cli(['customers', 'get', 'nobody'], env);
    assert.equal(missing.code, 3);
  });

  it('exits 1 when the API refuses, with its message (JSON on stderr under --json)', async () => {
    const r = await cli(['keys', 'create', '--customer', 'acme', '--plan', 'nope'], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /400 bad_request: plan: unknown plan nope \(request /);
    const j = await cli(['customers', 'set', 'acme', '--quota-day', '1.5', '--json'], env);
    assert.equal(j.code, 1);
    assert.equal((JSON.parse(j.stderr) as { error: { code: string } }).error.code, 'bad_request');
    assert.equal(j.stdout, '');
  });

  it('exits 4 on a wrong token, 2 on a bad command line (sending nothing)', async () => {
    const before = seen.length;
    const wrong = await cli(['keys', 'list', '--token', 'not-the-token'], env);
    assert.equal(wrong.code, 4);
    assert.match(wrong.stderr, /401 unauthorized/);
    const n = seen.length;
    for (const args of [['keys'], ['keys', 'create'], ['keys', 'revoke'], ['keys', 'revoke', 'a', 'b'], ['frobnicate'], ['usage', 'acme', '--bogus'],
      ['customers', 'set', 'acme', '--rate', 'fast'], ['usage', 'acme', '--url', 'ftp://x'], ['usage', 'acme', '--timeout', '0']]) {
      const r = await cli(args, env);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /usage: sluice admin/, args.join(' '));
    }
    const noToken = await cli(['usage', 'acme'], { SLUICE_ADMIN_URL: proxy.url, SLUICE_ADMIN_TOKEN: '' });
    assert.equal(noToken.code, 2);
    assert.match(noToken.stderr, /no admin token/);
    assert.equal(seen.length, n, 'a bad command line sent a request');
    assert.ok(n > before);
  });

  it('exits 5 when nothing answers, or nothing answers within --timeout', async () => {
    const closed = await freePort();
    const refused = await cli(['usage', 'acme', '--url', `http://127.0.0.1:${closed}`], env);
    assert.equal(refused.code, 5);
    assert.match(refused.stderr, /ECONNREFUSED/);
    const sockets: Socket[] = [];
    const silent = createTcpServer((s) => { sockets.push(s); });
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    try {
      const r = await cli(['usage', 'acme', '--timeout', '0.5', '--url', `http://127.0.0.1:${(silent.address() as AddressInfo).port}`], env);
      assert.equal(r.code, 5);
      assert.match(r.stderr, /no answer within 0\.5 s/);
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });

  it('every request the CLI made is described by /admin/openapi.json, and every admin operation was used', async () => {
    const res = await request(`${gw.adminUrl}/admin/openapi.json`);
    assert.equal(res.statusCode, 200);
    const doc = await res.body.json() as Doc;
    const used = new Set<string>();
    const found = seen.flatMap((s) => {
      const d = describedBy(doc, s);
      used.add(`${d.method} ${d.template}`);
      return d.problems;
    });
    assert.deepEqual(found, []);
    const adminOps = Object.entries(doc.paths).filter(([t]) => t.startsWith('/admin/') && t !== '/admin/openapi.json')
      .flatMap(([t, ops]) => Object.keys(ops).filter((m) => m !== 'parameters').map((m) => `${m} ${t}`));
    assert.deepEqual(adminOps.filter((op) => !used.has(op)), []);
  });
});
