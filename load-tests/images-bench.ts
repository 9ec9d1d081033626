// npm run bench:images: images per second for a 2000×1333 JPEG (a real photo) turned into
// an 800 px WebP q80 and a 720 px JPEG q80, three ways in one run: sharp in this process
// (the floor of what the service can do), the HTTP image backend (sluice-backend, same
// sharp behind its pool), and ImageMagick's convert when it is installed.
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
const CONVERT = ['/usr/bin/convert-im6.q16', '/usr/bin/convert', '/usr/bin/magick'].find((p) => existsSync(p) && !readFileSync(p).subarray(0, 200).toString().includes('Stands in'));
const run = promisify(execFile);

interface Task {
  readonly name: string;
  readonly options: object;
  readonly accept: string;
  readonly sharp: (img: Buffer) => Promise<Buffer>;
  readonly convertArgs: (input: string, output: string) => string[];
  readonly ext: string;
}

const TASKS: Task[] = [
  {
    name: '2000×1333 JPEG → 800 px WebP q80',
    options: { resize: { width: 800 }, format: 'webp', quality: 80 },
    accept: 'image/webp',
    sharp: (img) => sharp(img).rotate().resize({ width: 800 }).webp({ quality: 80 }).toBuffer(),
    convertArgs: (i, o) => [i, '-auto-orient', '-resize', '800x', '-strip', '-quality', '80', o],
    ext: 'webp',
  },
  {
    name: '2000×1333 JPEG → 720 px JPEG q80',
    options: { resize: { width: 720 }, format: 'jpeg', quality: 80 },
    accept: 'image/jpeg',
    sharp: (img) => sharp(img).rotate().resize({ width: 720 }).jpeg({ quality: 80 }).toBuffer(),
    convertArgs: (i, o) => [i, '-auto-orient', '-resize', '720x', '-strip', '-quality', '80', o],
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
  try {
    for (const t of TASKS) {
      const viaHttp = async (): Promise<void> => {
        const res = await request(url, { method: 'POST', body: input, headers: { 'content-type': 'image/jpeg', 'x-options': JSON.stringify(t.options), accept: t.accept } });
        if (res.statusCode !== 200) throw new Error(`backend answered ${res.statusCode}: ${await res.body.text()}`);
        await res.body.arrayBuffer();
      };
      await rate(async () => { await t.sharp(input); }); // warm-up: libvips caches, JIT
      const raw = await rate(async () => { await t.sharp(input); });
      await viaHttp();
      const http = await rate(viaHttp);
      let im: number | undefined;
      if (CONVERT !== undefined) {
        let n = 0;
        im = await rate(async () => { await run(CONVERT, t.convertArgs(inputFile, join(dir, `out-${n++ % C}.${t.ext}`))); });
      }
      rows.push(`| ${t.name} | ${raw.toFixed(1)} | ${http.toFixed(1)} | ${(http / raw).toFixed(2)} | ${im === undefined ? 'not installed' : im.toFixed(1)} | ${im === undefined ? '-' : (http / im).toFixed(1)} |`);
      process.stderr.write(`${rows[rows.length - 1]}\n`);
    }
  } finally {
    backend.kill('SIGTERM');
    if (backend.exitCode === null) await once(backend, 'exit');
    rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write([
    `Sluice image bench ${new Date().toISOString()}: D=${D}s, C=${C} at a time, ${cpus().length} cores, node ${process.version}, sharp ${sharp.versions.sharp} (libvips ${sharp.versions.vips})${CONVERT === undefined ? '' : `, ${CONVERT}`}`,
    '',
    '| task | sharp in-process img/s | HTTP backend img/s | HTTP / sharp | ImageMagick img/s | HTTP / ImageMagick |',
    '|---|---:|---:|---:|---:|---:|',
    ...rows,
  ].join('\n') + '\n');
}

await main();
