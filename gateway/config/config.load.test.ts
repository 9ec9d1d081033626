import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { generateKeyPairSync } from 'node:crypto';
import { CLI } from '../../test/harness/gateway.js';
import { describeStore, tlsOptions } from '../../common/redis-client.js';
import { ConfigError, parseConfig } from './load.js';
import { MAX_ZONES_PER_ROUTE } from './schema/routes.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sluice-config-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The smallest valid config, as YAML text, with `extra` appended. */
function yaml(extra = ''): string {
  return `plans:
  free: { rate: 5, burst: 10 }
upstreams:
  main:
    targets: [http://127.0.0.1:7001]
routes:
  - { prefix: /, upstream: main }
${extra}`;
}

function errorsOf(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(text, env);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.errors];
    throw err;
  }
  assert.fail('the config was accepted');
}

function check(file: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, '--check', file], { env: { PATH: process.env.PATH, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

function writeTemp(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('config: ${VAR} interpolation', () => {
  it('substitutes set variables and defaults, and keeps numbers numbers', () => {
    const cfg = parseConfig(yaml(`server:
  port: \${PORT}
  host: \${HOST:-127.0.0.2}
  keep_alive_timeout_ms: \${KA:-7000}
store:
  kind: redis
  url: redis://\${REDIS_HOST:-127.0.0.1}:\${REDIS_PORT}/0
  prefix: "\${PREFIX:-sx}:"
`), { PORT: '8181', REDIS_PORT: '6390', PREFIX: '' });
    assert.equal(cfg.server.port, 8181);
    assert.equal(cfg.server.host, '127.0.0.2', 'unset: the default');
    assert.equal(cfg.server.keep_alive_timeout_ms, 7000, 'a defaulted number is a number');
    assert.equal(cfg.store.url, 'redis://127.0.0.1:6390/0', 'several placeholders inside one value');
    assert.equal(cfg.store.prefix, 'sx:', 'set but empty counts as unset for :-, inside quotes too');
  });

  it('works inside flow collections', () => {
    const cfg = parseConfig(yaml(`upstreams:
  main: { targets: [\${B1}, \${B2:-http://127.0.0.1:7002}], connections: \${CONNS:-8} }
`).replace(/^upstreams:\n  main:\n    targets: \[http:\/\/127\.0\.0\.1:7001\]\n/m, ''), { B1: 'http://127.0.0.1:7001' });
    assert.deepEqual(cfg.upstreams.get('main')!.targets.map((t) => t.url), ['http://127.0.0.1:7001', 'http://127.0.0.1:7002']);
    assert.equal(cfg.upstreams.get('main')!.connections, 8);
  });

  it('takes a value verbatim, even with YAML syntax in it', () => {
    // A pepper is a secret: whatever bytes it has must arrive, not be read as a comment,
    // a mapping or a second document.
    for (const pepper of ['pep #not-a-comment', 'a: b', '- x', '"quoted"', 'x\ny: 1', '---', '{ a: 1 }', '&anchor', '#start']) {
      const cfg = parseConfig(yaml('auth:\n  pepper: ${PEPPER}\n'), { PEPPER: pepper });
      assert.equal(cfg.auth.pepper, pepper, `pepper ${JSON.stringify(pepper)}`);
    }
    const quoted = parseConfig(yaml('auth:\n  pepper: "p-${PEPPER}-q"\n'), { PEPPER: 'a #b "c"' });
    assert.equal(quoted.auth.pepper, 'p-a #b "c"-q');
  });

  it('leaves comments alone, including placeholders of unset variables in them', () => {
    const cfg = parseConfig(yaml(`# port: \${UNSET_IN_COMMENT}
server:
  port: 8282   # or \${ALSO_UNSET} in production
  host: "127.0.0.1" # \${AND_THIS:-x}
`), {});
    assert.equal(cfg.server.port, 8282);
    assert.equal(cfg.server.host, '127.0.0.1');
  });

  it('reports an unset variable without a default, naming the field', () => {
    const errors = errorsOf(yaml('server:\n  port: ${NOT_SET_ANYWHERE}\nstore:\n  prefix: x-${ALSO_NOT_SET}\n'));
    assert.equal(errors.length, 2, errors.join('\n'));
    assert.match(errors[0]!, /^server\.port: .*NOT_SET_ANYWHERE/);
    assert.match(errors[1]!, /^store\.prefix: .*ALSO_NOT_SET/);
  });
});

describe('config: unknown fields', () => {
  const cases: [string, string, string][] = [
    ['root', 'extra: 1\n', 'extra'],
    ['server', 'server:\n  prot: 1\n', 'server.prot'],
    ['admin', 'admin:\n  token: x\n', 'admin.token'],
    ['store', 'store:\n  kind: memory\n  timeout: 5\n', 'store.timeout'],
    ['auth', 'auth:\n  ttl: 5\n', 'auth.ttl'],
    ['auth key', 'auth:\n  keys:\n    - { digest: sha256:' + 'a'.repeat(64) + ', customer: c, plan: free, secret: x }\n', 'auth.keys[0].secret'],
    ['jwt', 'auth:\n  jwt: { algorithms: [HS256], keys: [{ secret: ' + 's'.repeat(32) + ' }], algoritm: RS256 }\n', 'auth.jwt.algoritm'],
    ['log', 'log:\n  format: text\n', 'log.format'],
    ['customer overrides', 'customers:\n  c: { plan: free, overrides: { brust: 3 } }\n', 'customers.c.overrides.brust'],
  ];
  for (const [what, extra, path] of cases) {
    it(`rejects an unknown field in ${what}`, () => {
      const errors = errorsOf(yaml(extra));
      assert.ok(errors.some((e) => e.startsWith(`${path}: unknown field`)), errors.join('\n'));
    });
  }

  it('rejects unknown fields in plans, upstreams and routes', () => {
    const errors = errorsOf(`plans:
  free: { rate: 5, burst: 10, rat: 6 }
upstreams:
  main: { targets: [http://127.0.0.1:7001], timeout_ms: 5 }
routes:
  - { prefix: /, upstream: main, upstrem: main }
`);
    for (const path of ['plans.free.rat', 'upstreams.main.timeout_ms', 'routes[0].upstrem']) {
      assert.ok(errors.some((e) => e.startsWith(`${path}: unknown field`)), `${path} in:\n${errors.join('\n')}`);
    }
  });
});

describe('config: JWT keys are checked when the config is', () => {
  it('refuses a PEM that is not a public key, naming its path', () => {
    const errors = errorsOf(yaml('auth:\n  jwt:\n    algorithms: [RS256]\n    keys:\n      - pem: "-----BEGIN PUBLIC KEY-----\\nnot base64\\n-----END PUBLIC KEY-----"\n'));
    assert.ok(errors.some((e) => e.startsWith('auth.jwt.keys[0].pem:')), errors.join('\n'));
  });

  it('refuses a key no pinned algorithm can use', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const errors = errorsOf(yaml(`auth:\n  jwt:\n    algorithms: [RS256]\n    keys:\n      - { kid: a, secret: ${'s'.repeat(32)} }\n      - pem: ${JSON.stringify(ec)}\n`));
    assert.ok(errors.some((e) => e.startsWith('auth.jwt.keys[0]')), errors.join('\n'));
    assert.ok(errors.some((e) => e.startsWith('auth.jwt.keys[1]')), errors.join('\n'));
  });

  it('refuses an HS256 secret shorter than 32 bytes', () => {
    const errors = errorsOf(yaml('auth:\n  jwt:\n    algorithms: [HS256]\n    keys:\n      - secret: short\n'));
    assert.ok(errors.some((e) => e.startsWith('auth.jwt.keys[0].secret:')), errors.join('\n'));
  });

  it('accepts RSA and P-256 public keys for RS256 and ES256', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const cfg = parseConfig(yaml(`auth:\n  jwt:\n    algorithms: [RS256, ES256]\n    keys:\n      - pem: ${JSON.stringify(rsa)}\n      - pem: ${JSON.stringify(ec)}\n`), {});
    assert.equal(cfg.auth.jwt!.keys.length, 2);
  });
});

describe('config: sluice --check', () => {
  it('passes the shipped configs', async () => {
    const files = ['config/sluice.yaml', 'config/examples/redis.yaml'].filter((f) => existsSync(join(ROOT, f)));
    assert.ok(files.includes('config/sluice.yaml'));
    for (const f of files) {
      const r = await check(join(ROOT, f));
      assert.equal(r.code, 0, `${f}: ${r.stderr}`);
      assert.match(r.stdout, /: ok \(/, f);
    }
  });

  it('uses the environment when checking', async () => {
    const r = await check(join(ROOT, 'config/sluice.yaml'), { SLUICE_PORT: 'eighty' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /server\.port: must be a whole number, got "eighty"/);
  });

  it('exits 1 and lists every error with its field path', async () => {
    const file = writeTemp('bad.yaml', `server:
  port: 70000
  prot: 8080
admin:
  token_digest: not-hex
store:
  kind: redis
plans:
  free: { rate: fast, burst: 10 }
auth:
  keys:
    - { digest: abc, customer: c, plan: gold }
upstreams:
  main: { targets: [ftp://x] }
routes:
  - { prefix: v1, upstream: nope }
log:
  level: loud
`);
    const r = await check(file);
    assert.equal(r.code, 1, r.stdout);
    const want = [
      'server.port', 'server.prot', 'admin.token_digest', 'store.url', 'plans.free.rate', 'auth.keys[0].digest', 'auth.keys[0].plan',
      'upstreams.main.targets[0]', 'routes[0].prefix', 'routes[0].upstream', 'log.level',
    ];
    for (const path of want) assert.ok(r.stderr.includes(`  ${path}: `), `${path} missing from:\n${r.stderr}`);
    assert.match(r.stderr, new RegExp(`${want.length} error\\(s\\)`), r.stderr);
    assert.equal(r.stdout, '');
  });

  it('exits 1 on YAML that does not parse and on a missing file', async () => {
    const broken = await check(writeTemp('broken.yaml', 'server:\n  port: [1, 2\n'));
    assert.equal(broken.code, 1);
    assert.match(broken.stderr, /yaml/i);
    const missing = await check(join(dir, 'does-not-exist.yaml'));
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /does-not-exist\.yaml/);
  });
});

describe('config: upstream retries and circuit breakers', () => {
  const with_ = (fields: string): string => yaml().replace('    targets: [http://127.0.0.1:7001]\n', `    targets: [http://127.0.0.1:7001]\n    connections: 8\n${fields}`);

  it('defaults: 2 retries within 20% or 3/s, 64 KiB replayable bodies, breakers off, pool size from connections', () => {
    const u = parseConfig(with_(''), {}).upstreams.get('main')!;
    assert.deepEqual(u.retry, { attempts: 2, statuses: [502, 503], budget_percent: 20, min_per_second: 3, max_buffered_body_bytes: 65536 });
    assert.deepEqual(u.circuit, { max_connections: 8, max_pending: 0, max_inflight: 0 });
  });

  it('takes the fields and names a bad one', () => {
    const u = parseConfig(with_('    retry: { attempts: 1, max_buffered_body_bytes: 0 }\n    circuit: { max_connections: 2, max_inflight: 4 }\n'), {}).upstreams.get('main')!;
    assert.equal(u.retry.attempts, 1);
    assert.equal(u.retry.max_buffered_body_bytes, 0);
    assert.deepEqual(u.circuit, { max_connections: 2, max_pending: 0, max_inflight: 4 });
    const errors = errorsOf(with_('    retry: { attempts: -1, budget: 5 }\n    circuit: { max_connections: 0 }\n'));
    for (const path of ['upstreams.main.retry.attempts', 'upstreams.main.retry.budget', 'upstreams.main.circuit.max_connections']) {
      assert.ok(errors.some((e) => e.startsWith(path)), `${path} in:\n${errors.join('\n')}`);
    }
  });
});

// store.mode and its fields: standalone (url), sentinel (sentinels + sentinel_name),
// cluster (nodes), with password and TLS for each. TLS cannot be exercised end to end
// without certificates, so its parsing and the options handed to node:tls are checked here.
const parseStore = (store: string) => parseConfig(yaml(`store:\n${store}`), {});
const storeErrors = (store: string): string[] => errorsOf(yaml(`store:\n${store}`));

describe('store config: deployment modes', () => {
  it('a url alone is still standalone, as before modes existed', () => {
    const s = parseStore('  kind: redis\n  url: redis://127.0.0.1:6379\n').store;
    assert.equal(s.mode, 'standalone');
    assert.equal(s.url, 'redis://127.0.0.1:6379');
    assert.equal(s.tls, undefined);
    assert.equal(s.password, undefined);
  });

  it('sentinel: host:port list (IPv6 in brackets) and the master name', () => {
    const s = parseStore('  kind: redis\n  mode: sentinel\n  sentinel_name: mymaster\n  sentinels: ["127.0.0.1:26379", "[::1]:26380", "redis-s3:26381"]\n  password: hunter2\n').store;
    assert.equal(s.mode, 'sentinel');
    assert.deepEqual(s.sentinels, [{ host: '127.0.0.1', port: 26379 }, { host: '::1', port: 26380 }, { host: 'redis-s3', port: 26381 }]);
    assert.equal(s.sentinel_name, 'mymaster');
    assert.equal(s.password, 'hunter2');
    assert.equal(describeStore(s), 'sentinel mymaster via 127.0.0.1:26379,::1:26380,redis-s3:26381');
  });

  it('cluster: seed node urls; logs never show a password', () => {
    const s = parseStore('  kind: redis\n  mode: cluster\n  nodes: ["redis://:pw@10.0.0.1:7000", "rediss://10.0.0.2:7000"]\n').store;
    assert.deepEqual(s.nodes, ['redis://:pw@10.0.0.1:7000', 'rediss://10.0.0.2:7000']);
    assert.equal(describeStore(s), 'cluster redis://***@10.0.0.1:7000,rediss://10.0.0.2:7000');
  });

  it('each mode requires its own fields and refuses the others\'', () => {
    assert.deepEqual(storeErrors('  kind: redis\n  mode: sentinel\n'), [
      'store.sentinels: is required when mode is sentinel (a list of host:port)', 'store.sentinel_name: is required when mode is sentinel']);
    assert.deepEqual(storeErrors('  kind: redis\n  mode: cluster\n  url: redis://x:1\n'), [
      'store.url: is for mode standalone, not cluster', 'store.nodes: is required when mode is cluster (a list of redis:// urls)']);
    assert.deepEqual(storeErrors('  kind: redis\n  url: redis://x:1\n  nodes: ["redis://y:1"]\n'), ['store.nodes: is for mode cluster, not standalone']);
    assert.deepEqual(storeErrors('  kind: redis\n  mode: sentinel\n  sentinel_name: m\n  sentinels: ["nohost", "h:99999"]\n'), [
      'store.sentinels[0]: must be host:port, got "nohost"', 'store.sentinels[1]: must be host:port, got "h:99999"']);
    assert.deepEqual(storeErrors('  kind: redis\n  mode: cluster\n  nodes: ["10.0.0.1:7000"]\n'), ['store.nodes[0]: must start with redis:// or rediss://, got "10.0.0.1:7000"']);
    assert.deepEqual(storeErrors('  kind: redis\n  mode: replicated\n  url: redis://x:1\n'), ['store.mode: must be one of standalone, sentinel, cluster, got "replicated"']);
  });

  it('discovery is accepted on every store mode (the registry client is built from the store config)', () => {
    const cfg = parseConfig(`${yaml().replace('targets: [http://127.0.0.1:7001]', 'discover: true')}store:\n  kind: redis\n  mode: cluster\n  nodes: ["redis://a:1"]\n`, {});
    assert.deepEqual(cfg.upstreams.get('main')!.discover, { name: 'main', poll_interval_ms: 250 });
  });
});

describe('store config: TLS', () => {
  it('tls: true means TLS with the system CAs, verifying the server', () => {
    const s = parseStore('  kind: redis\n  url: rediss://cache:6380\n  tls: true\n').store;
    assert.deepEqual(s.tls, { reject_unauthorized: true });
    assert.deepEqual(tlsOptions(s), { ca: undefined, cert: undefined, key: undefined, servername: undefined, rejectUnauthorized: true });
  });

  it('CA, client certificate and servername reach node:tls as file contents', () => {
    for (const f of ['ca.pem', 'c.pem', 'k.pem']) writeFileSync(join(dir, f), `contents of ${f}`);
    const s = parseStore(`  kind: redis\n  mode: cluster\n  nodes: ["rediss://10.0.0.1:7000"]\n  tls:\n    ca: ${join(dir, 'ca.pem')}\n    cert: ${join(dir, 'c.pem')}\n    key: ${join(dir, 'k.pem')}\n    servername: redis.internal\n    reject_unauthorized: false\n`).store;
    const o = tlsOptions(s)!;
    assert.equal(o.ca?.toString(), 'contents of ca.pem');
    assert.equal(o.cert?.toString(), 'contents of c.pem');
    assert.equal((o.key as Buffer).toString(), 'contents of k.pem');
    assert.equal(o.servername, 'redis.internal');
    assert.equal(o.rejectUnauthorized, false);
  });

  it('refuses a cert without its key, and unknown fields', () => {
    assert.deepEqual(storeErrors('  kind: redis\n  url: rediss://a:1\n  tls: { cert: /x.pem, verify: true }\n'), [
      'store.tls.verify: unknown field (expected one of: ca, servername, cert, key, reject_unauthorized)',
      'store.tls: cert and key go together (client-certificate authentication needs both)']);
  });
});

describe('config: empty values, quoted numbers and shorthands', () => {
  it('an empty value, or a placeholder that came out empty, means the default', () => {
    const cfg = parseConfig(yaml('server:\n  port:\n  host: ${UNSET:-}\nstore:\n  prefix: ""\n'), {});
    assert.equal(cfg.server.port, 8080);
    assert.equal(cfg.server.host, '127.0.0.1');
    assert.equal(cfg.store.prefix, 'sluice:');
  });

  it('does not convert a quoted number: only a placeholder standing alone is typed', () => {
    assert.deepEqual(errorsOf(yaml('server:\n  port: "8080"\n')), ['server.port: must be a whole number, got "8080"']);
    assert.equal(parseConfig(yaml('server:\n  port: ${P}\n  trust_forwarded: ${T}\n'), { P: '8081', T: 'true' }).server.trust_forwarded, true);
  });

  it('tls: false and discover: false are off; a target string is its url with every default', () => {
    const cfg = parseConfig(yaml('store:\n  kind: memory\n  tls: false\n').replace('targets: [http://127.0.0.1:7001]', 'targets: [http://127.0.0.1:7001, { url: "http://127.0.0.1:7002", weight: 3 }]\n    discover: false'), {});
    assert.equal(cfg.store.tls, undefined);
    assert.equal(cfg.upstreams.get('main')!.discover, undefined);
    assert.deepEqual(cfg.upstreams.get('main')!.targets, [{ url: 'http://127.0.0.1:7001', weight: 1, backup: false }, { url: 'http://127.0.0.1:7002', weight: 3, backup: false }]);
  });

  it('a file that is not a mapping is one error', () => {
    assert.deepEqual(errorsOf('- a\n- b\n'), ['(root): must be a mapping']);
  });
});

describe('config: the zones of one route', () => {
  it('at most MAX_ZONES_PER_ROUTE limit_req and limit_conn zones a route (the Redis store defines one script per count)', () => {
    const zones = (n: number): string => Array.from({ length: n }, (_, i) => `  z${i}: { key: client, rate: 10r/s }`).join('\n');
    const conns = (n: number): string => Array.from({ length: n }, (_, i) => `  c${i}: { key: client }`).join('\n');
    const text = (n: number): string => `plans:
  free: { rate: 5, burst: 10 }
upstreams:
  main:
    targets: [http://127.0.0.1:7001]
limit_req_zones:
${zones(n)}
limit_conn_zones:
${conns(n)}
routes:
  - prefix: /
    upstream: main
    limit_req: [${Array.from({ length: n }, (_, i) => `{ zone: z${i} }`).join(', ')}]
    limit_conn: [${Array.from({ length: n }, (_, i) => `{ zone: c${i}, max: 5 }`).join(', ')}]
`;
    const ok = parseConfig(text(MAX_ZONES_PER_ROUTE), {});
    assert.equal(ok.routes[0]!.limit_req.length, MAX_ZONES_PER_ROUTE);
    assert.deepEqual(errorsOf(text(MAX_ZONES_PER_ROUTE + 1)), [
      `routes[0].limit_req: must list at most ${MAX_ZONES_PER_ROUTE} items`,
      `routes[0].limit_conn: must list at most ${MAX_ZONES_PER_ROUTE} items`,
    ]);
  });
});
