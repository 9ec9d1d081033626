// npm run bench: the echo backend direct, Sluice on the memory store and Sluice on
// Redis, loaded one after the other in the same run (interleaved when ROUNDS > 1),
// printing req/s, p50, p99 and each one's ratio to direct.
//   D=10 C=64 ROUNDS=1 WARM=2 npm run bench
import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { spawnGateway, type GatewayProcess } from '../test/harness/gateway.js';
import { freePort } from '../test/harness/ports.js';
import { startRedis } from '../test/harness/redis.js';

const D = Number(process.env.D ?? 10);
const C = Number(process.env.C ?? 64);
const ROUNDS = Number(process.env.ROUNDS ?? 1);
const WARM = Number(process.env.WARM ?? 2);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CONFIG = readFileSync(`${ROOT}load-tests/configs/anchors.yaml`, 'utf8');

interface Target { readonly name: string; readonly url: string; readonly headers: Record<string, string> }
interface Sample { readonly rps: number; readonly p50: number; readonly p99: number; readonly non2xx: number; readonly errors: number }

async function load(t: Target, seconds: number): Promise<Sample> {
  const r = await autocannon({ url: `${t.url}/v1/ping`, connections: C, duration: seconds, headers: t.headers, pipelining: 1 });
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, non2xx: r.non2xx, errors: r.errors + r.timeouts };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const backendPort = await freePort();
  const backend = spawn(process.execPath, [`${ROOT}dist/load-tests/echo-backend.js`, String(backendPort)], { stdio: 'ignore' });
  const redis = await startRedis();
  const upstream = `http://127.0.0.1:${backendPort}`;
  const env = { SLUICE_PORT: '0', SLUICE_ADMIN_PORT: '0', SLUICE_UPSTREAM: upstream, REDIS_URL: redis.url, SLUICE_LOG_LEVEL: 'info' };
  const gateways: GatewayProcess[] = [];
  try {
    const mem = await spawnGateway(CONFIG, { ...env, SLUICE_STORE: 'memory' });
    gateways.push(mem);
    const red = await spawnGateway(CONFIG, { ...env, SLUICE_STORE: 'redis' });
    gateways.push(red);
    const key = { 'x-api-key': 'bench' };
    const targets: Target[] = [
      { name: 'direct echo backend', url: upstream, headers: {} },
      { name: 'sluice, memory store', url: mem.url, headers: key },
      { name: 'sluice, redis store', url: red.url, headers: key },
    ];
    const samples = new Map<string, Sample[]>(targets.map((t) => [t.name, []]));
    for (let round = 1; round <= ROUNDS; round++) {
      for (const t of targets) {
        if (WARM > 0) await load(t, WARM);
        const s = await load(t, D);
        samples.get(t.name)!.push(s);
        process.stderr.write(`round ${round}/${ROUNDS} ${t.name}: ${Math.round(s.rps)} req/s p50 ${s.p50} ms p99 ${s.p99} ms\n`);
      }
    }
    const direct = median(samples.get(targets[0]!.name)!.map((s) => s.rps));
    const rows = targets.map((t) => {
      const ss = samples.get(t.name)!;
      const rps = median(ss.map((s) => s.rps));
      return `| ${t.name} | ${Math.round(rps)} | ${median(ss.map((s) => s.p50))} | ${median(ss.map((s) => s.p99))} | ${(rps / direct).toFixed(2)} | ${ss.reduce((a, s) => a + s.non2xx, 0)} | ${ss.reduce((a, s) => a + s.errors, 0)} |`;
    });
    const stamp = new Date().toISOString();
    const table = [
      `Sluice bench ${stamp}: autocannon C=${C} D=${D}s ROUNDS=${ROUNDS} (medians), ${cpus().length} cores, node ${process.version}`,
      '',
      '| target | req/s | p50 ms | p99 ms | x direct | non-2xx | errors |',
      '|---|---:|---:|---:|---:|---:|---:|',
      ...rows,
    ].join('\n');
    process.stdout.write(`${table}\n`);
    const outDir = `${ROOT}load-tests/out`;
    mkdirSync(outDir, { recursive: true });
    writeFileSync(`${outDir}/bench-${stamp.replace(/[:.]/g, '')}.md`, `${table}\n`);
  } finally {
    for (const g of gateways) await g.stop();
    await redis.stop();
    backend.kill('SIGTERM');
    if (backend.exitCode === null) await once(backend, 'exit');
  }
}

await main();
