// npm run bench:images: images per second for a 2000×1333 JPEG (a real photo) turned into
// an 800 px WebP q80 and a 720 px JPEG q80, four ways in one run: sharp in this process
// (the floor of what the service can do), the HTTP image backend (sluice-backend, same
// sharp behind its pool), libvips' own vipsthumbnail (the same engine from C, one process
// per image) and ImageMagick's convert, when they are installed (load-tests/bench-tools.sh).
// The HTTP time per image is then split with the backend's Server-Timing header into
// upload, queue, processing, storing and answering (the rest of the client's wall time).
//   D=10 C=2 npm run bench:images
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { request } from 'undici';
import { freePort } from '../test/harness/ports.js';

const D = Number(process.env.D ?? 10);
const C = Number(process.env.C ?? cpus().length);
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

/** C workers doing `one` back to back for D seconds; images per second. */
async function rate(one: () => Promise<void>): Promise<number> {
  let done = 0;
  const end = Date.now() + D * 1000;
  const started = performance.now();
  await Promise.all(Array.from({ length: C }, async () => {
    while (Date.now() < end) { await one(); done++; }
  }));
  return done / ((performance.now() - started) / 1000);
}

async function main(): Promise<void> {
  const photo = join(ROOT, 'node_modules/@vladmandic/face-api/demo/sample1.jpg');
  const input = await sharp(photo).resize(2000, 1333, { fit: 'fill' }).jpeg({ quality: 90 }).toBuffer();
  const dir = mkdtempSync(join(tmpdir(), 'sluice-imgbench-'));
  const inputFile = join(dir, 'input.jpg');
  writeFileSync(inputFile, input);

  const port = await freePort();
  const backend = spawn(process.execPath, [join(ROOT, 'dist/backends/cli.js'), '--port', String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [first] = await once(backend.stdout!, 'data') as [Buffer];
  if (!first.toString().includes('listening')) throw new Error(`backend did not start: ${first.toString()}`);
  const url = `http://127.0.0.1:${port}/v1/images`;

  const rows: string[] = [];
  const splits: string[] = [];
  try {
    for (const t of TASKS) {
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
      await rate(async () => { await t.sharp(input); }); // warm-up: libvips caches, JIT
      const raw = await rate(async () => { await t.sharp(input); });
      await viaHttp();
      Object.assign(phases, { upload: 0, queue: 0, process: 0, store: 0, total: 0, n: 0 });
      const http = await rate(viaHttp);
      const cli = async (bin: string | undefined, args: (i: string, o: string) => string[]): Promise<number | undefined> => {
        if (bin === undefined) return undefined;
        let n = 0;
        return rate(async () => { await run(bin, args(inputFile, join(dir, `out-${n++ % C}.${t.ext}`))); });
      };
      const vips = await cli(VIPSTHUMBNAIL, t.vipsArgs);
      const im = await cli(CONVERT, t.convertArgs);
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
    if (backend.exitCode === null) await once(backend, 'exit');
    rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write([
    `Sluice image bench ${new Date().toISOString()}: D=${D}s, C=${C} at a time, ${cpus().length} cores, node ${process.version}, sharp ${sharp.versions.sharp} (libvips ${sharp.versions.vips})${VIPSTHUMBNAIL === undefined ? '' : `, ${VIPSTHUMBNAIL}`}${CONVERT === undefined ? '' : `, ${CONVERT}`}`,
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
  ].join('\n') + '\n');
}

await main();
