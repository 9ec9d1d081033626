// `npm run bench:anchors`: Sluice beside the edge it replaces (nginx + Lua) and beside the
// least a Node proxy can do, on one core each (issue 20). Copies ../shared/anchors (the
// harness: nginx configs, Lua, upstream, seeded keys) to a temp dir, starts Redis, the
// upstream and every target once, warms each Node target until its CPU per request stops
// falling (30 s at least), then measures them in interleaved rounds with wrk and prints
// the medians: req/s, p50/p90/p99/p99.9, CPU per request (every target, from the kernel's
// per-thread accounting), and for Node targets bytes allocated per request and time in GC.
//
//   npm run bench:anchors                        all rows, pinned, D=10 s, ROUNDS=3
//   ROWS=nginx-lua,bare-dispatch,sluice-redis D=5 ROUNDS=2 npm run bench:anchors
//   PIN=0 npm run bench:anchors                  unpinned (everything shares the 2 cores)
//   WAIT_QUIET=300 npm run bench:anchors         wait up to 300 s for the machine to be quiet first
//   SLUICE_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof" ROWS=sluice-redis npm run bench:anchors
//   HEAP=1 ROWS=bare-dispatch,sluice-redis npm run bench:anchors    what outlives a scavenge, by
//                                                allocation site (load-tests/PROFILE.md)
//
// PIN=1 (the default): the target under load alone on CPU SUT_CPU=0; wrk, the upstream,
// Redis and the idle targets on AUX_CPU=1. A proxy's req/s then is what one core of it
// does, the per-core comparison the issue asks for. Other variables: D (seconds measured),
// ROUNDS, C (connections, 64), WARM (seconds of warm-up before each later round, 2),
// WARM_MIN (30) / WARM_MAX (90) / WARM_SLICE (5) for the first warm-up, QUIET_PCT (10),
// ANCHORS (the harness; default ../shared/anchors beside this repository), RESULTS_DIR.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, appendFileSync, rmSync, writeFileSync, existsSync, chmodSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, totalmem, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuNs, median, otherCpu, pin, probed, processTree, runWrk, type WrkResult } from './measure.js';
import type { ProbeWindow } from './node-probe.js';
import { readKeys, spreadConfig, spreadScript } from './spread.js';
import { TARGETS, type Setup, type Started, type Target } from './targets.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const env = process.env;
const num = (name: string, def: number): number => (env[name] === undefined || env[name] === '' ? def : Number(env[name]));
const opts = {
  pin: env.PIN !== '0',
  sutCpu: num('SUT_CPU', 0),
  auxCpu: num('AUX_CPU', 1),
  seconds: num('D', 10),
  rounds: num('ROUNDS', 3),
  connections: num('C', 64),
  warm: num('WARM', 2),
  warmMin: num('WARM_MIN', 30),
  warmMax: num('WARM_MAX', 90),
  warmSlice: num('WARM_SLICE', 5),
  waitQuiet: num('WAIT_QUIET', 0),
  quietPct: num('QUIET_PCT', 10),
  anchors: env.ANCHORS ?? join(ROOT, '../shared/anchors'),
  resultsDir: env.RESULTS_DIR ?? join(ROOT, 'load-tests/out'),
  rows: (env.ROWS ?? '').split(/[ ,]+/).filter(Boolean),
};

/** One measured round of one target. */
interface Measured {
  readonly target: string;
  readonly round: number;
  readonly wrk: WrkResult;
  readonly cpuUsPerRequest: number;
  readonly gc: ProbeWindow | undefined;
  readonly scriptCallsPerRequest: number | undefined;
  readonly otherPct: number;
}

interface WarmUp { readonly seconds: number; readonly steady: boolean; readonly cpuUs: readonly number[] }

const children: { child: ChildProcess; name: string }[] = [];
let tmp = '';

function stopAll(): void {
  for (const { child } of children.reverse()) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  if (tmp !== '' && env.KEEP_TMP !== '1') rmSync(tmp, { recursive: true, force: true });
}
process.on('exit', stopAll);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => res(p)); });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const headerObject = (hs: readonly string[]): Record<string, string> =>
  Object.fromEntries(hs.map((h) => [h.slice(0, h.indexOf(':')).trim(), h.slice(h.indexOf(':') + 1).trim()]));

async function waitUp(name: string, url: string, headers: readonly string[]): Promise<number> {
  for (let i = 0; i < 300; i++) {
    try {
      const r = await fetch(url, { headers: headerObject(headers), signal: AbortSignal.timeout(1000) });
      await r.arrayBuffer();
      return r.status;
    } catch { await sleep(100); }
  }
  throw new Error(`${name} did not come up at ${url} (log: ${join(tmp, `${name}.log`)})`);
}

function scriptCalls(redisPort: number): number {
  const info = execFileSync('redis-cli', ['-p', String(redisPort), 'info', 'commandstats']).toString();
  let n = 0;
  for (const m of info.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)) n += Number(m[1]);
  return n;
}

async function main(): Promise<void> {
  if (!existsSync(join(opts.anchors, 'run.sh'))) throw new Error(`no anchors harness at ${opts.anchors}: set ANCHORS to the shared/anchors folder`);
  if (opts.pin && cpus().length < 2) throw new Error('PIN=1 needs 2 CPUs (PIN=0 runs unpinned)');
  const rows = opts.rows.length === 0 ? TARGETS : opts.rows.map((r) => {
    const t = TARGETS.find((x) => x.name === r);
    if (t === undefined) throw new Error(`unknown row ${r} (known: ${TARGETS.map((x) => x.name).join(' ')})`);
    return t;
  });
  tmp = mkdtempSync(join(tmpdir(), 'anchors-bench-'));
  chmodSync(tmp, 0o755); // nginx's workers run as nobody
  const anchors = join(tmp, 'anchors');
  cpSync(opts.anchors, anchors, { recursive: true });
  execFileSync('chmod', ['-R', 'u+w', anchors]);
  execFileSync('./setup.sh', { cwd: anchors, stdio: ['ignore', 'ignore', 'inherit'] });
  const probeDir = join(tmp, 'probe');
  mkdirSync(probeDir);

  const track = (child: ChildProcess, name: string): void => { children.push({ child, name }); };
  const redisPort = await freePort();
  track(spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(redisPort), '--save', '', '--appendonly', 'no', '--dir', tmp], { stdio: 'ignore' }), 'redis');
  for (let i = 0; i < 100; i++) {
    try { execFileSync('redis-cli', ['-p', String(redisPort), 'ping'], { stdio: 'ignore' }); break; } catch { await sleep(100); }
  }
  execFileSync('sh', ['-c', `node seed.js resp | redis-cli -p ${redisPort} --pipe > /dev/null`], { cwd: anchors });
  const hugeKey = /KEY_HUGE=(\S+)/.exec(execFileSync('node', ['seed.js', 'env'], { cwd: anchors }).toString())![1]!;
  const keys = readKeys(execFileSync('node', ['seed.js', 'list'], { cwd: anchors, maxBuffer: 16 << 20 }).toString());
  const spreadYaml = join(tmp, 'sluice-1000-keys.yaml');
  writeFileSync(spreadYaml, spreadConfig(readFileSync(join(ROOT, 'load-tests/configs/anchors.yaml'), 'utf8'), keys));
  const report = join(anchors, 'wrk-report.lua');
  const spreadLua = join(tmp, 'wrk-spread.lua');
  writeFileSync(spreadLua, spreadScript(readFileSync(report, 'utf8'), keys));

  const upPort = await freePort();
  const upstream = spawn('node', ['upstream.js', String(upPort)], { cwd: anchors, stdio: 'ignore' });
  track(upstream, 'upstream');
  const upstreamUrl = `http://127.0.0.1:${upPort}`;
  await waitUp('upstream', `${upstreamUrl}/`, []);

  const setup: Setup = {
    anchors, root: ROOT, tmp, upstreamUrl, redisPort, hugeKey, spreadConfig: spreadYaml, probeDir,
    sluiceNodeFlags: (env.SLUICE_NODE_FLAGS ?? '').split(' ').filter(Boolean), freePort, track,
  };
  const started = new Map<string, Started>();
  for (const t of rows) {
    const st = await t.start(setup);
    const status = await waitUp(t.name, st.url, st.headers);
    if (status !== 200) throw new Error(`${t.name}: GET ${st.url} answered ${status}, not 200 (log: ${join(tmp, `${t.name}.log`)})`);
    started.set(t.name, st);
  }
  const others = otherCpu(anchors, []);
  const ours = (): number[] => children.flatMap(({ child }) => (child.pid === undefined ? [] : processTree(child.pid)));
  const otherPct = (a: string): number => otherCpu(anchors, ours()).diff(a, others.snap());
  if (opts.waitQuiet > 0) {
    const deadline = Date.now() + opts.waitQuiet * 1000;
    for (;;) {
      const a = others.snap();
      await sleep(5000);
      const pct = otherPct(a);
      if (pct < opts.quietPct || Date.now() > deadline) { console.log(`   other processes used ${pct}% of the machine before the start`); break; }
      console.log(`   waiting for a quiet machine: other processes use ${pct}%`);
    }
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, '').slice(0, 15);
  console.log(`== anchors bench ${stamp}: PIN=${opts.pin ? 1 : 0} D=${opts.seconds}s ROUNDS=${opts.rounds} wrk -t1 -c${opts.connections}; rows: ${rows.map((r) => r.name).join(' ')}`);

  const placeFor = (t: Target): void => {
    if (!opts.pin) return;
    pin(ours(), opts.auxCpu);
    pin(processTree(started.get(t.name)!.pid), opts.sutCpu);
  };
  const wrkFor = (t: Target, seconds: number): Promise<WrkResult> => {
    const st = started.get(t.name)!;
    return runWrk({
      url: st.url, headers: t.spread ? [] : st.headers, script: t.spread ? spreadLua : report, seconds,
      connections: opts.connections, cpu: opts.pin ? String(opts.auxCpu) : undefined,
    });
  };

  /** The first warm-up: slices until the CPU per request of the last three is within 5% of their median (WARM_MIN s at least for Node). */
  const warmUp = async (t: Target): Promise<WarmUp> => {
    const tree = processTree(started.get(t.name)!.pid);
    const min = t.kind === 'node' ? opts.warmMin : opts.warmSlice;
    const series: number[] = [];
    let seconds = 0;
    for (;;) {
      const c0 = cpuNs(tree);
      const w = await wrkFor(t, opts.warmSlice);
      series.push((cpuNs(tree) - c0) / 1000 / Math.max(1, w.requests));
      seconds += opts.warmSlice;
      const last = series.slice(-3);
      const m = median(last);
      const steady = last.length === 3 && last.every((x) => Math.abs(x - m) <= 0.05 * m);
      if ((seconds >= min && steady) || seconds >= opts.warmMax) return { seconds, steady, cpuUs: series };
    }
  };

  const warmed = new Map<string, WarmUp>();
  const results: Measured[] = [];
  const jsonl = join(opts.resultsDir, `anchors-${stamp}.jsonl`);
  mkdirSync(opts.resultsDir, { recursive: true });
  for (let round = 1; round <= opts.rounds; round++) {
    for (const t of rows) {
      const st = started.get(t.name)!;
      placeFor(t);
      if (!warmed.has(t.name)) {
        const w = await warmUp(t);
        warmed.set(t.name, w);
        console.log(`   ${t.name.padEnd(24)} warm-up ${w.seconds} s${w.steady ? '' : ' (not steady by WARM_MAX)'}: CPU per request ${w.cpuUs.map((x) => x.toFixed(0)).join(' → ')} µs`);
      } else if (opts.warm > 0) {
        await wrkFor(t, opts.warm);
      }
      const tree = processTree(st.pid);
      const snap = others.snap();
      const c0 = cpuNs(tree);
      const k0 = t.redis ? scriptCalls(redisPort) : 0;
      const run = (): Promise<WrkResult> => wrkFor(t, opts.seconds);
      const { value: w, gc } = t.kind === 'node' ? await probed(st.pid, probeDir, run) : { value: await run(), gc: undefined };
      const cpu = (cpuNs(tree) - c0) / 1000 / Math.max(1, w.requests);
      const calls = t.redis ? (scriptCalls(redisPort) - k0) / Math.max(1, w.requests) : undefined;
      const m: Measured = { target: t.name, round, wrk: w, cpuUsPerRequest: cpu, gc, scriptCallsPerRequest: calls, otherPct: otherPct(snap) };
      results.push(m);
      appendFileSync(jsonl, `${JSON.stringify(m)}\n`);
      if (env.HEAP === '1' && t.kind === 'node') keepHeapProfile(probeDir, st.pid, join(opts.resultsDir, `anchors-${stamp}-${t.name}-r${round}.heapprofile`), w.requests);
      const rps = w.requests / (w.duration_us / 1e6);
      console.log(`   r${round} ${t.name.padEnd(24)} ${rps.toFixed(0).padStart(6)} req/s  p99 ${(w.p99_us / 1000).toFixed(2)} ms  p99.9 ${(w.p999_us / 1000).toFixed(2)} ms  CPU ${cpu.toFixed(1)} µs/req${gc === undefined ? '' : `  ${(gc.allocatedBytes / w.requests / 1024).toFixed(1)} KiB/req  ${(gc.survivedBytes / w.requests).toFixed(0)} B/req survive  GC ${(gc.gcMs / gc.seconds).toFixed(1)} ms/s`}  other CPU ${m.otherPct}%`);
    }
  }

  const table = renderTable(rows, results, warmed);
  const versions = [
    `node ${process.version}`,
    `nginx ${spawnSync('nginx', ['-v']).stderr.toString().trim().replace(/^nginx version: nginx\//, '')}`,
    `redis ${/v=(\S+)/.exec(execFileSync('redis-server', ['--version']).toString())?.[1]}`,
  ].join(', ');
  const header = `## anchors bench ${stamp}: PIN=${opts.pin ? 1 : 0}, D=${opts.seconds} s, ROUNDS=${opts.rounds} (medians), wrk -t1 -c${opts.connections}\n\n`
    + `Machine: ${cpus().length} × ${cpus()[0]?.model.trim()}, ${Math.round(totalmem() / 2 ** 30)} GiB; ${versions}. Raw rounds: ${jsonl}.\n`;
  const md = join(opts.resultsDir, `anchors-${stamp.slice(0, 10)}.md`);
  appendFileSync(md, `\n${header}\n${table}\n`);
  console.log(`\n${table}\n\nappended to ${md}`);
}

/** The probe writes the heap profile a moment after the window closes. */
function keepHeapProfile(probeDir: string, pid: number, to: string, requests: number): void {
  const from = join(probeDir, `${pid}.heapprofile`);
  for (let i = 0; i < 100 && !existsSync(from); i++) execFileSync('sleep', ['0.05']);
  if (!existsSync(from)) return;
  cpSync(from, to);
  rmSync(from);
  console.log(`      heap profile: node dist/load-tests/heap-summary.js ${to} 30 ${requests}`);
}

function renderTable(rows: readonly Target[], results: readonly Measured[], warmed: ReadonlyMap<string, WarmUp>): string {
  const byName = new Map(rows.map((t) => [t.name, results.filter((r) => r.target === t.name)]));
  const rps = (r: Measured): number => r.wrk.requests / (r.wrk.duration_us / 1e6);
  const med = (name: string, f: (r: Measured) => number | undefined): number => {
    const xs = (byName.get(name) ?? []).map(f).filter((x): x is number => x !== undefined && Number.isFinite(x));
    return median(xs);
  };
  const base = (t: Target): string => (t.spread ? 'nginx-lua-1000-keys' : 'nginx-lua');
  const fmt = (x: number, digits = 1): string => (Number.isFinite(x) ? x.toFixed(digits) : '—');
  const lines = [
    '| target | req/s | × nginx+Lua | p50 ms | p90 ms | p99 ms | p99.9 ms | CPU µs/req | × bare dispatch | KiB alloc/req | B/req outliving a scavenge | GC ms/s | longest scavenge ms | old space MB (first → last GC) | script calls/req | warm-up s | other CPU % |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  const bareCpu = med('bare-dispatch', (r) => r.cpuUsPerRequest);
  for (const t of rows) {
    const n = t.name;
    const r = med(n, rps);
    const cpu = med(n, (x) => x.cpuUsPerRequest);
    const gc = (f: (g: ProbeWindow, x: Measured) => number): number => med(n, (x) => (x.gc === undefined ? undefined : f(x.gc, x)));
    const w = warmed.get(n);
    lines.push(`| ${n} | ${fmt(r, 0)} | ${fmt(r / med(base(t), rps), 2)} | ${fmt(med(n, (x) => x.wrk.p50_us / 1000), 2)} | ${fmt(med(n, (x) => x.wrk.p90_us / 1000), 2)} | `
      + `${fmt(med(n, (x) => x.wrk.p99_us / 1000), 2)} | ${fmt(med(n, (x) => x.wrk.p999_us / 1000), 2)} | ${fmt(cpu)} | ${n.startsWith('sluice') ? fmt(cpu / bareCpu, 2) : '—'} | `
      + `${fmt(gc((g, x) => g.allocatedBytes / x.wrk.requests / 1024))} | ${fmt(gc((g, x) => g.survivedBytes / x.wrk.requests), 0)} | ${fmt(gc((g) => g.gcMs / g.seconds))} | ${fmt(gc((g) => g.scavengeMaxMs), 2)} | `
      + `${t.kind === 'node' ? `${fmt(gc((g) => g.oldFirstBytes / 2 ** 20))} → ${fmt(gc((g) => g.oldLastBytes / 2 ** 20))}` : '—'} | `
      + `${t.redis ? fmt(med(n, (x) => x.scriptCallsPerRequest), 3) : '—'} | ${w === undefined ? '—' : `${w.seconds}${w.steady ? '' : '+'}`} | ${(byName.get(n) ?? []).map((x) => x.otherPct).join('/')} |`);
  }
  return lines.join('\n');
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(`anchors bench: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
