// The rows of the anchors bench, one entry each: what it is and how it starts. Every target
// proxies to the harness's Node upstream (upstream.js, 100 bytes); those with limits use the
// harness's Redis. They all stay up for the whole run, each pinned to the tested core only
// while it is the one under load.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';

/** What the bench prepared that a target needs to start. */
export interface Setup {
  /** The temp copy of ../shared/anchors (setup.sh run in it). */
  readonly anchors: string;
  /** This repository (its dist/ built). */
  readonly root: string;
  readonly tmp: string;
  readonly upstreamUrl: string;
  readonly redisPort: number;
  /** The seeded key on the harness's unbounded plan, for nginx+Lua. */
  readonly hugeKey: string;
  /** load-tests/configs/anchors.yaml with the harness's 1,000 seeded keys (spread.ts). */
  readonly spreadConfig: string;
  readonly probeDir: string;
  /** Extra node flags for Sluice (SLUICE_NODE_FLAGS, e.g. --cpu-prof). */
  readonly sluiceNodeFlags: readonly string[];
  freePort(): Promise<number>;
  /** Every process started here is stopped at the end, by its id. */
  track(child: ChildProcess, name: string): void;
}

export interface Started {
  readonly pid: number;
  readonly url: string;
  /** Headers for wrk and the smoke check. */
  readonly headers: readonly string[];
}

export interface Target {
  readonly name: string;
  readonly what: string;
  readonly kind: 'nginx' | 'node';
  /** Whether its limits live in Redis (its script calls per request are counted). */
  readonly redis: boolean;
  /** Rotate X-API-Key over the 1,000 seeded keys (spread.ts) instead of one key. */
  readonly spread: boolean;
  start(s: Setup): Promise<Started>;
}

function launch(s: Setup, name: string, cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = {}, cwd = s.anchors): ChildProcess {
  const log = openSync(join(s.tmp, `${name}.log`), 'a');
  const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', log, log] });
  s.track(child, name);
  return child;
}

const probe = (s: Setup): string[] => ['--import', join(s.root, 'dist/load-tests/anchors/node-probe.js')];
const probeEnv = (s: Setup): NodeJS.ProcessEnv => ({ NODE_PROBE_DIR: s.probeDir, NODE_PROBE_HEAP: process.env.HEAP === '1' ? '1' : '0' });

async function nginxLua(s: Setup, name: string): Promise<Started> {
  const port = await s.freePort();
  const prefix = join(s.tmp, `nginx-${name}`);
  const conf = join(prefix, 'nginx.conf');
  mkdirSync(prefix, { recursive: true });
  execFileSync('node', [join(s.anchors, 'render-conf.js'), join(s.anchors, 'conf/lua.conf.tmpl'), conf,
    'W=1', `PREFIX=${prefix}`, `PORT=${port}`, `UPSTREAM_ADDR=${new URL(s.upstreamUrl).host}`,
    `LUADIR=${join(s.anchors, 'lua')}`, `REDIS_PORT=${s.redisPort}`]);
  const child = launch(s, name, 'nginx', ['-p', prefix, '-c', conf, '-e', join(prefix, 'error.log'), '-g', 'daemon off;']);
  return { pid: child.pid!, url: `http://127.0.0.1:${port}/`, headers: [`X-API-Key: ${s.hugeKey}`] };
}

async function nodeProxy(s: Setup, name: string, script: string): Promise<Started> {
  const port = await s.freePort();
  const child = launch(s, name, process.execPath, [...probe(s), script, String(port), s.upstreamUrl], probeEnv(s));
  return { pid: child.pid!, url: `http://127.0.0.1:${port}/`, headers: [] };
}

async function sluice(s: Setup, name: string, env: NodeJS.ProcessEnv, config = join(s.root, 'load-tests/configs/anchors.yaml'), key = 'bench'): Promise<Started> {
  const port = await s.freePort();
  const admin = await s.freePort();
  const child = launch(s, name, process.execPath,
    [...probe(s), ...s.sluiceNodeFlags, join(s.root, 'dist/gateway/cli.js'), '--config', config, '--workers', '1'],
    {
      ...probeEnv(s), ...env,
      SLUICE_PORT: String(port), SLUICE_ADMIN_PORT: String(admin),
      SLUICE_UPSTREAM: s.upstreamUrl, REDIS_URL: `redis://127.0.0.1:${s.redisPort}`, SLUICE_LOG_LEVEL: 'warn',
    }, s.root);
  return { pid: child.pid!, url: `http://127.0.0.1:${port}/`, headers: [`X-API-Key: ${key}`] };
}

/** Every row the bench knows, in table order; ROWS picks some. */
export const TARGETS: readonly Target[] = [
  {
    name: 'nginx-lua', what: 'nginx + Lua (key lookup, Redis token bucket), 1 worker', kind: 'nginx', redis: true, spread: false,
    start: (s) => nginxLua(s, 'nginx-lua'),
  },
  {
    name: 'node-undici', what: "bare undici proxy (the harness's node-undici.js: pool.stream, no auth, no limits)", kind: 'node', redis: false, spread: false,
    start: (s) => nodeProxy(s, 'node-undici', join(s.anchors, 'node-undici.js')),
  },
  {
    name: 'bare-dispatch', what: 'bare dispatch proxy (node:http + Pool.dispatch, as the gateway uses it): the CPU reference', kind: 'node', redis: false, spread: false,
    start: (s) => nodeProxy(s, 'bare-dispatch', join(s.root, 'dist/load-tests/anchors/bare-dispatch.js')),
  },
  {
    name: 'sluice-redis', what: 'Sluice, Redis store, token leases on (the default)', kind: 'node', redis: true, spread: false,
    start: (s) => sluice(s, 'sluice-redis', { SLUICE_STORE: 'redis', SLUICE_LEASES: 'true' }),
  },
  {
    name: 'sluice-redis-no-leases', what: 'Sluice, Redis store, leases off (one EVALSHA per request)', kind: 'node', redis: true, spread: false,
    start: (s) => sluice(s, 'sluice-redis-no-leases', { SLUICE_STORE: 'redis', SLUICE_LEASES: 'false' }),
  },
  {
    name: 'sluice-memory', what: 'Sluice, memory store', kind: 'node', redis: false, spread: false,
    start: (s) => sluice(s, 'sluice-memory', { SLUICE_STORE: 'memory' }),
  },
  {
    name: 'nginx-lua-1000-keys', what: 'nginx + Lua, requests rotating over 1,000 keys within their plans', kind: 'nginx', redis: true, spread: true,
    start: (s) => nginxLua(s, 'nginx-lua-1000-keys'),
  },
  {
    name: 'sluice-redis-1000-keys', what: 'Sluice on Redis, leases on, the same 1,000 keys (too slow each to lease)', kind: 'node', redis: true, spread: true,
    start: (s) => sluice(s, 'sluice-redis-1000-keys', { SLUICE_STORE: 'redis', SLUICE_LEASES: 'true' }, s.spreadConfig, s.hugeKey),
  },
];
