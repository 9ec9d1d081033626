// npm run bench:images: images per second for a 2000×1333 JPEG (a real photo) turned into
// an 800 px WebP q80 and a 720 px JPEG q80, four ways in one run: sharp in this process
// (the floor of what the service can do), the HTTP image backend (sluice-backend, same
// sharp behind its pool), libvips' own vipsthumbnail (the same engine from C, one process
// per image) and ImageMagick's convert, when they are installed (load-tests/bench-tools.sh).
// The HTTP time per image is then split with the backend's Server-Timing header into
// upload, queue, processing, storing and answering (the rest of the client's wall time).
// The ways take turns, ROUNDS times, and each figure is the median of its rounds, so a
// burst of load from other work on a shared machine hits one round of one way, not a
// whole column. BACKEND_ARGS adds flags to the backend (before/after comparisons).
// A fifth way, the floor, is node:http + sharp and nothing else, under the backend's own
// process tuning (images-floor-server.ts): the best an HTTP image service in Node does
// here, so the CPU table splits the backend's overhead into Sluice's and the socket's.
//   D=8 C=4 ROUNDS=3 npm run bench:images
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { request } from 'undici';
import { parseBackendConfig } from '../backends/service/config.js';
import { tuning } from '../backends/service/tuning.js';
import { freePort } from '../test/harness/ports.js';

const D = Number(process.env.D ?? 10);
/**
 * Images in flight at once, for every way alike. Default twice the cores: a server's
 * throughput is what it does with its queue never empty, as under real traffic; with
 * exactly one client per core the backend would idle through every upload, store and
 * answer (the split table shows how long those take).
 */
const C = Number(process.env.C ?? 2 * cpus().length);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
/** CLI=0 skips vipsthumbnail and ImageMagick (before/after comparisons of the backend alone). */
const CLI = process.env.CLI !== '0';
const BACKEND_ARGS = (process.env.BACKEND_ARGS ?? '').split(' ').filter((a) => a !== '');
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const real = (p: string): boolean => existsSync(p) && !readFileSync(p).subarray(0, 4096).toString('latin1').includes('is not installed here');
const CONVERT = ['/usr/bin/convert-im6.q16', '/usr/bin/convert', '/usr/bin/magick'].find(real);
const VIPSTHUMBNAIL = ['/usr/bin/vipsthumbnail', '/usr/local/bin/vipsthumbnail'].find(real);
const run = promisify(execFile);

interface Task {
  readonly name: string;
  readonly options: object;
  readonly accept: string;
  readonly sharp: (img: Buffer) => Promise<Buffer>;
  readonly convertArgs: (input: string, output: string) => string[];
  readonly vipsArgs: (input: string, output: string) => string[];
  readonly ext: string;
}

const TASKS: Task[] = [
  {
    name: '2000×1333 JPEG → 800 px WebP q80',
    options: { resize: { width: 800 }, format: 'webp', quality: 80 },
    accept: 'image/webp',
    sharp: (img) => sharp(img).rotate().resize({ width: 800 }).webp({ quality: 80 }).toBuffer(),
    convertArgs: (i, o) => [i, '-auto-orient', '-resize', '800x', '-strip', '-quality', '80', o],
    vipsArgs: (i, o) => [i, '--size', '800x', '-o', `${o}[Q=80,strip]`],
    ext: 'webp',
  },
  {
    name: '2000×1333 JPEG → 720 px JPEG q80',
    options: { resize: { width: 720 }, format: 'jpeg', quality: 80 },
    accept: 'image/jpeg',
    sharp: (img) => sharp(img).rotate().resize({ width: 720 }).jpeg({ quality: 80 }).toBuffer(),
    convertArgs: (i, o) => [i, '-auto-orient', '-resize', '720x', '-strip', '-quality', '80', o],
    vipsArgs: (i, o) => [i, '--size', '720x', '-o', `${o}[Q=80,optimize_coding,strip]`],
    ext: 'jpg',
  },
];

/** utime + stime (and, with `children`, of waited-for children) of a process, in ms, from /proc (Linux). */
function procCpuMs(pid: number | 'self', children = false, path: string = String(pid)): number {
  const f = readFileSync(`/proc/${path}/stat`, 'latin1');
  const v = f.slice(f.lastIndexOf(')') + 2).split(' ').map(Number);
  // After "pid (comm) ": state is [0], utime [11], stime [12], cutime [13], cstime [14]; clock ticks of 10 ms.
  return (v[11]! + v[12]! + (children ? v[13]! + v[14]! : 0)) * 10;
}

/** A process and its descendants (the backend is a launcher whose child serves), CPU ms. */
function treeCpuMs(pid: number): number {
  let kids: number[] = [];
  try { kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'latin1').trim().split(' ').filter((x) => x !== '').map(Number); } catch { /* gone */ }
  return procCpuMs(pid) + kids.reduce((sum, k) => sum + treeCpuMs(k), 0);
}

/** The backend's serving process: the launcher's child, or the process itself without a re-exec. */
function servingPid(pid: number): number {
  try {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'latin1').trim().split(' ').filter((x) => x !== '');
    return kids.length > 0 ? Number(kids[0]) : pid;
  } catch { return pid; }
}

/**
 * CPU ms of the backend by where it is spent: the main (JavaScript) thread, V8's helper
 * threads (concurrent GC marking, compilation), the libuv pool (sharp's job threads, fs),
 * the rest (libvips' own worker threads, short-lived, so counted as process total minus
 * the live threads), and, across all of them, kernel time.
 */
function backendCpuBreakdown(pid: number): Record<'main' | 'v8' | 'libuv' | 'libvips' | 'kernel', number> {
  const out = { main: 0, v8: 0, libuv: 0, libvips: 0, kernel: 0 };
  let live = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let ms: number;
    let comm: string;
    try { ms = procCpuMs(Number(tid), false, `${pid}/task/${tid}`); comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'latin1').trim(); } catch { continue; }
    live += ms;
    if (Number(tid) === pid) out.main += ms;
    else if (comm.startsWith('V8')) out.v8 += ms;
    else if (comm.startsWith('libuv')) out.libuv += ms;
    else out.libvips += ms;
  }
  out.libvips += procCpuMs(pid) - live;
  const f = readFileSync(`/proc/${pid}/stat`, 'latin1');
  out.kernel = Number(f.slice(f.lastIndexOf(')') + 2).split(' ')[12]) * 10;
  return out;
}

interface Sample { readonly rate: number; readonly cpuMsPerImage: number; readonly clientCpuMsPerImage: number }

/**
 * C workers doing `one` back to back for D seconds: images per second, and the CPU the
 * work cost per image (`cpu`: a counter in ms of whoever does the work; CPU time, unlike
 * wall time, barely moves with other work on a shared machine) and the bench process's own.
 */
async function rate(one: () => Promise<void>, cpu: () => number = () => 0): Promise<Sample> {
  let done = 0;
  const end = Date.now() + D * 1000;
  const started = performance.now();
  const cpu0 = cpu();
  const self0 = process.cpuUsage();
  await Promise.all(Array.from({ length: C }, async () => {
    while (Date.now() < end) { await one(); done++; }
  }));
  const self = process.cpuUsage(self0);
  return { rate: done / ((performance.now() - started) / 1000), cpuMsPerImage: (cpu() - cpu0) / done, clientCpuMsPerImage: (self.user + self.system) / 1000 / done };
}

async function main(): Promise<void> {
  const photo = join(ROOT, 'node_modules/@vladmandic/face-api/demo/sample1.jpg');
  const input = await sharp(photo).resize(2000, 1333, { fit: 'fill' }).jpeg({ quality: 90 }).toBuffer();
  const dir = mkdtempSync(join(tmpdir(), 'sluice-imgbench-'));
  const inputFile = join(dir, 'input.jpg');
  writeFileSync(inputFile, input);

  const port = await freePort();
  const backend = spawn(process.execPath, [join(ROOT, 'dist/backends/cli.js'), '--port', String(port), '--face-workers', '0', ...BACKEND_ARGS], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [first] = await once(backend.stdout!, 'data') as [Buffer];
  if (!first.toString().includes('listening')) throw new Error(`backend did not start: ${first.toString()}`);
  const url = `http://127.0.0.1:${port}/v1/images`;
  // The floor runs as the backend's re-exec'd child would: same environment, node flags and libvips threads.
  const cfg = parseBackendConfig(['--face-workers', '0', ...BACKEND_ARGS], process.env);
  const tune = tuning(cfg, process.env, []);
  const floorPort = await freePort();
  const floor = spawn(process.execPath, [...tune.execArgv, join(ROOT, 'dist/load-tests/images-floor-server.js'), '--port', String(floorPort), '--sharp-concurrency', String(cfg.sharpConcurrency)], { env: tune.env, stdio: ['ignore', 'pipe', 'inherit'] });
  const [floorFirst] = await once(floor.stdout!, 'data') as [Buffer];
  if (!floorFirst.toString().includes('listening')) { backend.kill('SIGTERM'); floor.kill('SIGTERM'); throw new Error(`floor server did not start: ${floorFirst.toString()}`); }

  const rows: string[] = [];
  const splits: string[] = [];
  const cpuRows: string[] = [];
  const threadRows: string[] = [];
  try {
    // TASK=JPEG runs only the tasks whose name contains it.
    for (const t of TASKS.filter((x) => x.name.includes(process.env.TASK ?? ''))) {
      const phases = { upload: 0, queue: 0, process: 0, store: 0, total: 0, n: 0 };
      const viaHttp = async (): Promise<void> => {
        const t0 = performance.now();
        const res = await request(url, { method: 'POST', body: input, headers: { 'content-type': 'image/jpeg', 'x-options': JSON.stringify(t.options), accept: t.accept } });
        if (res.statusCode !== 200) throw new Error(`backend answered ${res.statusCode}: ${await res.body.text()}`);
        await res.body.arrayBuffer();
        phases.total += performance.now() - t0;
        for (const m of String(res.headers['server-timing']).matchAll(/(\w+);dur=([\d.]+)/g)) phases[m[1] as 'upload'] += Number(m[2]);
        phases.n++;
      };
      const viaFloor = async (): Promise<void> => {
        const res = await request(`http://127.0.0.1:${floorPort}/`, { method: 'POST', body: input, headers: { 'content-type': 'image/jpeg', 'x-options': JSON.stringify({ ...t.options }), accept: t.accept } });
        if (res.statusCode !== 200) throw new Error(`floor server answered ${res.statusCode}: ${await res.body.text()}`);
        await res.body.arrayBuffer();
      };
      const cli = (bin: string, args: (i: string, o: string) => string[]): () => Promise<void> => {
        let n = 0;
        return async () => { await run(bin, args(inputFile, join(dir, `out-${n++ % C}.${t.ext}`))); };
      };
      const selfCpu = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
      const childrenCpu = (): number => procCpuMs('self', true) - procCpuMs('self');
      const ways: { name: string; one: () => Promise<void>; cpu: () => number }[] = [
        { name: 'sharp', one: async () => { await t.sharp(input); }, cpu: selfCpu },
        { name: 'http', one: viaHttp, cpu: () => treeCpuMs(backend.pid!) },
        { name: 'floor', one: viaFloor, cpu: () => treeCpuMs(floor.pid!) },
        ...(VIPSTHUMBNAIL === undefined || !CLI ? [] : [{ name: 'vips', one: cli(VIPSTHUMBNAIL, t.vipsArgs), cpu: childrenCpu }]),
        ...(CONVERT === undefined || !CLI ? [] : [{ name: 'im', one: cli(CONVERT, t.convertArgs), cpu: childrenCpu }]),
      ];
      await rate(ways[0]!.one); // warm-up: JIT, the backend's first requests
      // The servers' first images pay for JIT and libvips' start: a few rounds of C each, unmeasured.
      for (let i = 0; i < 3; i++) await Promise.all(Array.from({ length: C }, async () => { await viaHttp(); await viaFloor(); }));
      Object.assign(phases, { upload: 0, queue: 0, process: 0, store: 0, total: 0, n: 0 });
      const samples = new Map<string, Sample[]>(ways.map((w) => [w.name, []]));
      const server = servingPid(backend.pid!);
      const split = { main: 0, v8: 0, libuv: 0, libvips: 0, kernel: 0 };
      const httpImages = (): number => phases.n;
      for (let r = 0; r < ROUNDS; r++) {
        for (const w of ways) {
          const before = w.name === 'http' ? backendCpuBreakdown(server) : undefined;
          samples.get(w.name)!.push(await rate(w.one, w.cpu));
          if (before !== undefined) {
            const after = backendCpuBreakdown(server);
            for (const k of Object.keys(split) as (keyof typeof split)[]) split[k] += after[k] - before[k];
          }
        }
      }
      const per = (v: number): string => (v / httpImages()).toFixed(1);
      threadRows.push(`| ${t.name} | ${per(split.main)} | ${per(split.v8)} | ${per(split.libuv)} | ${per(split.libvips)} | ${per(split.kernel)} |`);
      const median = (name: string, of: (s: Sample) => number = (s) => s.rate): number | undefined => {
        const v = (samples.get(name) ?? []).map(of).sort((a, b) => a - b);
        return v.length === 0 ? undefined : v[Math.floor(v.length / 2)];
      };
      const raw = median('sharp')!;
      const http = median('http')!;
      const vips = median('vips');
      const im = median('im');
      const cpuOf = (name: string): number | undefined => median(name, (s) => s.cpuMsPerImage);
      process.stderr.write(`${t.name}: ${[...samples].map(([k, v]) => `${k} ${v.map((x) => `${x.rate.toFixed(2)} img/s ${x.cpuMsPerImage.toFixed(1)} ms`).join(' / ')}`).join(', ')}\n`);
      const cpuCell = (v: number | undefined): string => (v === undefined ? '-' : v.toFixed(1));
      cpuRows.push(`| ${t.name} | ${cpuCell(cpuOf('sharp'))} | ${cpuCell(cpuOf('http'))} | ${(cpuOf('sharp')! / cpuOf('http')!).toFixed(2)} | ${cpuCell(cpuOf('floor'))} | ${(cpuOf('sharp')! / cpuOf('floor')!).toFixed(2)} | ${(cpuOf('floor')! / cpuOf('http')!).toFixed(2)} | ${cpuCell(median('http', (s) => s.clientCpuMsPerImage))} | ${cpuCell(cpuOf('vips'))} | ${cpuCell(cpuOf('im'))} |`);
      const cell = (v: number | undefined): string => (v === undefined ? 'not installed' : v.toFixed(1));
      const ratio = (v: number | undefined): string => (v === undefined ? '-' : (http / v).toFixed(2));
      rows.push(`| ${t.name} | ${raw.toFixed(1)} | ${http.toFixed(1)} | ${(http / raw).toFixed(2)} | ${cell(vips)} | ${ratio(vips)} | ${cell(im)} | ${ratio(im)} |`);
      const ms = (v: number): string => (v / phases.n).toFixed(1);
      const answer = phases.total - phases.upload - phases.queue - phases.process - phases.store;
      splits.push(`| ${t.name} | ${ms(phases.total)} | ${ms(phases.upload)} | ${ms(phases.queue)} | ${ms(phases.process)} | ${ms(phases.store)} | ${ms(answer)} | ${(C * 1000 / raw).toFixed(1)} |`);
      process.stderr.write(`${rows[rows.length - 1]}\n${splits[splits.length - 1]}\n`);
    }
  } finally {
    backend.kill('SIGTERM');
    floor.kill('SIGTERM');
    if (backend.exitCode === null) await once(backend, 'exit');
    if (floor.exitCode === null && floor.signalCode === null) await once(floor, 'exit');
    rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write([
    `Sluice image bench ${new Date().toISOString()}: D=${D}s × ROUNDS=${ROUNDS} (median), C=${C} at a time, ${cpus().length} cores,${BACKEND_ARGS.length > 0 ? ` backend ${BACKEND_ARGS.join(' ')},` : ''} node ${process.version}, sharp ${sharp.versions.sharp} (libvips ${sharp.versions.vips})${VIPSTHUMBNAIL === undefined ? '' : `, ${VIPSTHUMBNAIL}`}${CONVERT === undefined ? '' : `, ${CONVERT}`}`,
    '',
    '| task | sharp in-process img/s | HTTP backend img/s | HTTP / sharp | vipsthumbnail img/s | HTTP / vipsthumbnail | ImageMagick img/s | HTTP / ImageMagick |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    'Where an HTTP image\'s time goes (mean ms per image, C at a time; upload, queue, process and store from the backend\'s Server-Timing, answer = the rest of the client\'s wall time: response transfer and client overhead):',
    '',
    '| task | HTTP total | upload | queue | process | store | answer | sharp in-process, ms per image at C |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...splits,
    '',
    'CPU per image (ms of user + system time: the bench process for sharp in-process, the backend process for HTTP, the floor server (node:http + sharp, the backend\'s tuning) for the floor, the commands for vipsthumbnail and ImageMagick; the HTTP client\'s own CPU is shown apart, it is not the service\'s cost):',
    '',
    '| task | sharp in-process | HTTP backend | sharp ÷ HTTP | HTTP floor | sharp ÷ floor | floor ÷ HTTP | HTTP client (bench) | vipsthumbnail | ImageMagick |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...cpuRows,
    '',
    'The HTTP backend\'s CPU per image by thread (ms; main = the JavaScript thread: HTTP, sniffing, results and metrics; V8 helpers = concurrent GC marking and compilation; libuv pool = sharp\'s job threads and fs; libvips = its worker threads; kernel = system time of all of them, included in the others):',
    '',
    '| task | main thread | V8 helpers | libuv pool | libvips workers | kernel |',
    '|---|---:|---:|---:|---:|---:|',
    ...threadRows,
    ...(VIPSTHUMBNAIL === undefined || CONVERT === undefined ? ['', 'Not installed, so not compared: load-tests/bench-tools.sh installs libvips-tools and imagemagick from Debian (or prints the apt-get line).'] : []),
  ].join('\n') + '\n');
}

await main();
