// The peak scenario (load-tests/scenarios/peak-50m-a-day.yaml) against nginx+Lua
// (lua-compat/nginx) and Sluice side by side, in one interleaved `sluice loadtest` run:
// each edge on a Redis of its own (so each keeps its own budgets), the same static keys
// and plans, one echo backend behind both. Rates and customer counts are scaled to fit
// one machine.
//   npm run build && node dist/load-tests/loadtest-vs-nginx.js [SCALE=0.05] [OUT=load-tests/out/loadtest-vs-nginx]
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { parseConfig } from '../gateway/config/load.js';
import { nginxModuleConfig } from '../gateway/config/nginx-module-config.js';
import { sha256 } from '../test/harness/config.js';
import { spawnGateway } from '../test/harness/gateway.js';
import { startNginx } from '../test/harness/nginx.js';
import { freePort } from '../test/harness/ports.js';
import { startRedis } from '../test/harness/redis.js';
import { runLoadtest } from '../gateway/loadtest/run.js';
import { loadScenario, type Profile, type Scenario } from '../gateway/loadtest/scenario.js';
import { summaryText } from '../gateway/loadtest/summary.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCALE = Number(process.argv[2] ?? 0.05);
const OUT = process.argv[3] ?? join(ROOT, 'load-tests/out/loadtest-vs-nginx');
const LUA_DIR = join(ROOT, 'lua-compat/nginx');
// Both edges fail closed with a 2 s store timeout, as in the interop test: on a shared
// machine a 50 ms timeout can expire, and a fail-open decision is not the shared one.
const STORE = { timeout_ms: 2000, failure_policy: 'closed' };

function scaled(p: Profile): Profile {
  switch (p.kind) {
    case 'constant': case 'poisson': return { ...p, rate: p.rate * SCALE };
    case 'ramp': return { ...p, from: p.from * SCALE, to: p.to * SCALE };
    case 'steps': return { ...p, steps: p.steps.map((s) => ({ ...s, rate: s.rate * SCALE })) };
    case 'bursts': return { ...p, rate: p.rate * SCALE, burstRate: p.burstRate * SCALE };
  }
}

async function main(): Promise<void> {
  const peak = loadScenario(join(ROOT, 'load-tests/scenarios/peak-50m-a-day.yaml'));
  mkdirSync(OUT, { recursive: true });
  // Static keys in the config of both edges, in a file for the load tester.
  const keys: { digest: string; customer: string; plan: string }[] = [];
  const groups = peak.groups.map((g) => {
    if (g.keys.kind !== 'admin') return g;
    const file = join(OUT, `keys-${g.name}.txt`);
    // Fewer customers in proportion, so each key sends at about the rate it would at full scale.
    const plain = Array.from({ length: Math.max(1, Math.round(g.keys.count * SCALE)) }, (_, i) => `lt-${g.name}-${i}`);
    for (const k of plain) keys.push({ digest: sha256(k), customer: k, plan: g.keys.plan });
    writeFileSync(file, `${plain.join('\n')}\n`);
    return { ...g, keys: { kind: 'file' as const, file } };
  });
  const scenario: Scenario = { ...peak, name: `${peak.name} at ${SCALE}×`, profile: scaled(peak.profile), groups, admin: undefined };

  // Everything started is stopped at the end, however the run ends.
  const stops: (() => Promise<void> | void)[] = [];
  try {
    const [redisSluice, redisNginx] = await Promise.all([startRedis(), startRedis()]);
    stops.push(() => redisSluice.stop(), () => redisNginx.stop());
    const backendPort = await freePort();
    const backend = spawn(process.execPath, [join(ROOT, 'dist/load-tests/echo-backend.js'), String(backendPort)], { stdio: 'ignore' });
    stops.push(() => { backend.kill(); });
    const config = (redisUrl: string): Record<string, unknown> => ({
      server: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
      store: { kind: 'redis', url: redisUrl, ...STORE },
      plans: {
        free: { rate: 5, burst: 10, quota_day: 1000, max_inflight: 5 },
        pro: { rate: 100, burst: 200, max_inflight: 50 },
      },
      auth: { keys },
      upstreams: { echo: { targets: [`http://127.0.0.1:${backendPort}`], connections: 256 } },
      routes: [{ name: 'all', prefix: '/', upstream: 'echo' }],
      log: { level: 'info', access: false },
    });
    const gw = await spawnGateway(config(redisSluice.url));
    stops.unshift(() => gw.stop());
    const ngx = await startNginx({
      template: readFileSync(join(LUA_DIR, 'nginx.conf.example'), 'utf8'),
      files: { 'sluice-nginx.json': JSON.stringify(nginxModuleConfig(parseConfig(stringify(config(redisNginx.url))))) },
      vars: { WORKERS: '1', LUA_DIR, CONFIG: '@@RUN_DIR@@/sluice-nginx.json', UPSTREAM_SERVERS: `server 127.0.0.1:${backendPort};` },
    });
    stops.unshift(() => ngx.stop());
    const result = await runLoadtest({
      scenario,
      targets: [{ url: ngx.url, admin: undefined }, { url: gw.url, admin: undefined }],
      outDir: OUT,
    });
    process.stdout.write(`nginx+Lua: ${ngx.url}, Sluice: ${gw.url}\n${summaryText(result)}wrote ${OUT}/result.json and ${OUT}/report.html\n`);
  } finally {
    for (const stop of stops) await stop();
  }
}

await main();
