// npm run bench:optimize: what each `optimize` level buys, measured the way the product
// sells it: bytes at equal visible quality. For every image of the corpus, every output
// format and every level, Sluice's output bytes and its perceptual score against the input
// at the output size (SSIM from ssim.js; butteraugli too when Debian's `butteraugli` is
// installed); then each reference encoder (Debian's cjpeg + jpegoptim, cwebp, avifenc,
// pngquant + optipng, ImageMagick) is swept over its quality setting on the same pixels,
// and the bytes it needs to reach Sluice's score are interpolated. "saved" is how much
// smaller Sluice is than that reference at the same score (negative: the reference wins).
//   W=640 N=4 npm run bench:optimize     (BUTTERAUGLI=0 skips butteraugli; FORMATS=webp,png narrows)
// Tools missing from PATH are skipped and named; `load-tests/bench-tools.sh` installs them.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { parseOptions } from '../backends/image/options.js';
import { processImage } from '../backends/image/process.js';
import { DEFAULT_LIMITS, type OptimizeLevel } from '../backends/image/types.js';
import { rgbaOnWhite as rgba, ssimScore as score } from '../test/harness/ssim.js';

const W = Number(process.env.W ?? 640);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);
const LEVELS: readonly (OptimizeLevel | 'none')[] = ['none', 'lossless', 'low', 'medium', 'high'];
const ALL_FORMATS = ['jpeg', 'webp', 'avif', 'png'] as const;
type Format = (typeof ALL_FORMATS)[number];
/** FORMATS=webp,png narrows a run (the sweeps of the others are skipped too). */
const FORMATS: readonly Format[] = process.env.FORMATS === undefined ? ALL_FORMATS : ALL_FORMATS.filter((f) => process.env.FORMATS!.split(',').includes(f));

/** A real binary on PATH (the CI image ships stand-ins that only print how to install). */
function tool(name: string, ...candidates: string[]): string | undefined {
  for (const p of [...candidates, ...(process.env.PATH ?? '').split(':').map((d) => join(d, name))]) {
    if (existsSync(p) && !readFileSync(p).subarray(0, 4096).toString('latin1').includes('is not installed here')) return p;
  }
  return undefined;
}
const T = {
  cjpeg: tool('cjpeg'), jpegoptim: tool('jpegoptim'), cwebp: tool('cwebp'), avifenc: tool('avifenc'),
  pngquant: tool('pngquant'), optipng: tool('optipng'), convert: tool('convert', '/usr/bin/convert-im6.q16', '/usr/bin/convert'),
  butteraugli: process.env.BUTTERAUGLI === '0' ? undefined : tool('butteraugli'),
};

/** The corpus: the sample photos shipped in @vladmandic/face-api, plus a screenshot and a flat graphic made here. */
async function corpus(): Promise<{ name: string; input: Buffer }[]> {
  const demo = join(ROOT, 'node_modules/@vladmandic/face-api/demo');
  // N photos (default 4 of the 6: the sweeps are many encodes each on a shared 2-core machine).
  const photos = readdirSync(demo).filter((f) => f.endsWith('.jpg')).sort().slice(0, Number(process.env.N ?? 4)).map((f) => ({ name: f, input: readFileSync(join(demo, f)) }));
  const rows = Array.from({ length: 14 }, (_, i) => `<rect x="40" y="${110 + i * 44}" width="${400 + ((i * 97) % 500)}" height="14" rx="3" fill="#${i % 3 ? '9aa5b1' : '52606d'}"/><text x="960" y="${122 + i * 44}" font-family="sans-serif" font-size="16" fill="#1f2933">row ${i + 1}: 12.${i}4 ms</text>`).join('');
  const screenshot = `<svg xmlns="http://www.w3.org/2000/svg" width="1280" height="800"><rect width="1280" height="800" fill="#f5f7fa"/><rect width="1280" height="64" fill="#1f6feb"/><text x="32" y="42" font-family="sans-serif" font-size="26" fill="#fff">Sluice dashboard — requests per second</text>${rows}<circle cx="1150" cy="32" r="18" fill="#ffd33d"/></svg>`;
  const bars = Array.from({ length: 12 }, (_, i) => `<rect x="${80 + i * 90}" y="${700 - ((i * 53) % 500) - 60}" width="60" height="${((i * 53) % 500) + 60}" fill="${['#e4572e', '#29335c', '#f3a712', '#a8c686'][i % 4]}"/>`).join('');
  const graphic = `<svg xmlns="http://www.w3.org/2000/svg" width="1200" height="800"><rect width="1200" height="800" fill="#ffffff"/>${bars}<line x1="60" y1="700" x2="1160" y2="700" stroke="#000" stroke-width="4"/><text x="80" y="80" font-family="sans-serif" font-size="48" font-weight="bold" fill="#29335c">Quarterly calls</text></svg>`;
  return [
    ...photos,
    { name: 'screenshot.png', input: await sharp(Buffer.from(screenshot)).png().toBuffer() },
    { name: 'graphic.png', input: await sharp(Buffer.from(graphic)).png({ palette: true }).toBuffer() },
  ];
}

interface Point { readonly score: number; readonly bytes: number }

/** Bytes the sweep needs to reach `target`, interpolated between the bracketing settings; undefined: never reaches it. */
function bytesAt(points: readonly Point[], target: number): number | undefined {
  let best: number | undefined;
  const sorted = [...points].sort((a, b) => a.score - b.score);
  for (let i = 0; i < sorted.length; i++) {
    const p = sorted[i]!;
    if (p.score >= target) best = Math.min(best ?? Infinity, p.bytes);
    const q = sorted[i + 1];
    if (q !== undefined && p.score < target && q.score >= target) {
      best = Math.min(best ?? Infinity, p.bytes + ((target - p.score) / (q.score - p.score)) * (q.bytes - p.bytes));
    }
  }
  return best;
}

interface Reference {
  readonly name: string;
  readonly formats: readonly Format[];
  readonly available: boolean;
  readonly missing: string;
  /** One encode of the reference pixels (ref.png / ref.ppm in dir) at setting q; returns the output file. */
  readonly encode: (dir: string, q: number) => Promise<string>;
  readonly settings: readonly number[];
}

const QUALITIES = [30, 45, 60, 70, 78, 85, 92];
const REFERENCES: Reference[] = [
  {
    name: 'cjpeg + jpegoptim', formats: ['jpeg'], available: T.cjpeg !== undefined && T.jpegoptim !== undefined, missing: 'libjpeg-turbo-progs jpegoptim',
    settings: QUALITIES,
    encode: async (dir, q) => {
      const out = join(dir, `cjpeg-${q}.jpg`);
      await run(T.cjpeg!, ['-quality', String(q), '-optimize', '-outfile', out, join(dir, 'ref.ppm')]);
      await run(T.jpegoptim!, ['--quiet', '--strip-all', '--all-progressive', out]);
      return out;
    },
  },
  {
    name: 'ImageMagick', formats: ['jpeg', 'webp'], available: T.convert !== undefined, missing: 'imagemagick', settings: QUALITIES,
    encode: async () => { throw new Error('per format'); },
  },
  {
    name: 'cwebp -m 6', formats: ['webp'], available: T.cwebp !== undefined, missing: 'webp', settings: QUALITIES,
    encode: async (dir, q) => {
      const out = join(dir, `cwebp-${q}.webp`);
      await run(T.cwebp!, ['-quiet', '-q', String(q), '-m', '6', join(dir, 'ref.png'), '-o', out]);
      return out;
    },
  },
  {
    // libavif 0.11 takes quantizers (0 best .. 63 worst), not a quality.
    name: 'avifenc -s 6', formats: ['avif'], available: T.avifenc !== undefined, missing: 'libavif-bin', settings: [14, 22, 30, 38, 46, 54],
    encode: async (dir, q) => {
      const out = join(dir, `avifenc-${q}.avif`);
      await run(T.avifenc!, ['-j', '1', '-s', '6', '--min', String(q), '--max', String(q), join(dir, 'ref.png'), out]);
      return out;
    },
  },
  {
    name: 'pngquant + optipng', formats: ['png'], available: T.pngquant !== undefined && T.optipng !== undefined, missing: 'pngquant optipng',
    // 101: no quantisation, optipng alone (lossless).
    settings: [40, 60, 70, 80, 90, 101],
    encode: async (dir, q) => {
      const out = join(dir, `pngquant-${q}.png`);
      if (q > 100) await run(T.optipng!, ['-quiet', '-clobber', '-o2', '-out', out, join(dir, 'ref.png')]);
      else {
        await run(T.pngquant!, ['--force', '--speed', '3', '--quality', `0-${q}`, '--output', out, join(dir, 'ref.png')]).catch(() => undefined);
        await run(T.optipng!, ['-quiet', '-o2', out]);
      }
      return out;
    },
  },
];

function imageMagick(format: Format): Reference['encode'] {
  return async (dir, q) => {
    const out = join(dir, `im-${q}.${format === 'jpeg' ? 'jpg' : format}`);
    await run(T.convert!, [join(dir, 'ref.png'), '-strip', '-quality', String(q), ...(format === 'webp' ? ['-define', 'webp:method=6'] : []), out]);
    return out;
  };
}

/** AUTO=0 skips the format: auto rows (each is up to three encodes, AVIF's the dearest). */
const AUTO = process.env.AUTO !== '0';

interface AutoRow { bytes: number; ssim: number; ms: number; n: number; belowTarget: number; picked: Map<string, number>; webpBytes: number; refBytes: number; refSluice: number; refUnreached: number }

/**
 * format: auto at each level. Its target is what the level's WebP encode scores on the
 * same image; "below target" counts images where auto's pick scores less. The best
 * reference is the fewest bytes any reference encoder (any format) needs for auto's score.
 */
async function autoRows(input: Buffer, refRaw: Awaited<ReturnType<typeof rgba>>, sweeps: ReadonlyMap<string, Point[]>, rows: Map<string, AutoRow>): Promise<void> {
  for (const level of LEVELS) {
    const optimize = level === 'none' ? {} : { optimize: level };
    const webp = await processImage(input, parseOptions({ resize: { width: W }, format: 'webp', ...optimize }), DEFAULT_LIMITS);
    const target = score(refRaw, await rgba(webp.data));
    const t0 = performance.now();
    const res = await processImage(input, parseOptions({ resize: { width: W }, format: 'auto', ...optimize }), DEFAULT_LIMITS);
    const ms = performance.now() - t0;
    const s = score(refRaw, await rgba(res.data));
    const row: AutoRow = rows.get(level) ?? { bytes: 0, ssim: 0, ms: 0, n: 0, belowTarget: 0, picked: new Map(), webpBytes: 0, refBytes: 0, refSluice: 0, refUnreached: 0 };
    row.bytes += res.data.length;
    row.ssim += s;
    row.ms += ms;
    row.n++;
    if (s < target) row.belowTarget++;
    row.picked.set(res.output.format, (row.picked.get(res.output.format) ?? 0) + 1);
    row.webpBytes += webp.data.length;
    const best = Math.min(...[...sweeps.values()].map((points) => bytesAt(points, s) ?? Infinity));
    if (best === Infinity) row.refUnreached++;
    else { row.refBytes += best; row.refSluice += res.data.length; }
    rows.set(level, row);
  }
}

function autoTable(rows: ReadonlyMap<string, AutoRow>): string[] {
  const pct = (a: number, b: number): string => `${((1 - a / b) * 100).toFixed(1)} %`;
  return [
    'format: auto (target: the score of the level\'s WebP on each image; "best reference": the fewest bytes any reference encoder above needs for auto\'s score):',
    '',
    '| level | auto KB | mean SSIM | below target | picked | ms/image | saved vs Sluice WebP | saved vs best reference |',
    '|---|---:|---:|---:|---|---:|---:|---:|',
    ...LEVELS.map((level) => {
      const r = rows.get(level)!;
      const picked = [...r.picked].map(([f, n]) => `${f} ${n}`).join(', ');
      const ref = r.refBytes === 0 ? 'n/a' : `${pct(r.refSluice, r.refBytes)}${r.refUnreached > 0 ? ` (${r.refUnreached} n/a)` : ''}`;
      return `| ${level} | ${(r.bytes / 1024).toFixed(1)} | ${(r.ssim / r.n).toFixed(4)} | ${r.belowTarget}/${r.n} | ${picked} | ${(r.ms / r.n).toFixed(0)} | ${pct(r.bytes, r.webpBytes)} | ${ref} |`;
    }),
  ];
}

interface Row { sluiceBytes: number; ssim: number; butteraugli: number[]; ms: number; n: number; ref: Map<string, { bytes: number; sluice: number; unreached: number }> }

async function main(): Promise<void> {
  sharp.concurrency(1); // CPU per image, comparable with the single-threaded CLIs
  const dir = mkdtempSync(join(tmpdir(), 'sluice-optbench-'));
  const rows = new Map<string, Row>();
  const autoRows_ = new Map<string, AutoRow>();
  const images = await corpus();
  try {
    for (const img of images) {
      // The reference: the input resized to the output size, kept lossless.
      const refPng = await sharp(img.input).rotate().resize({ width: W }).flatten({ background: '#ffffff' }).png().toBuffer();
      writeFileSync(join(dir, 'ref.png'), refPng);
      const refRaw = await rgba(refPng);
      writeFileSync(join(dir, 'ref.ppm'), Buffer.concat([Buffer.from(`P6\n${refRaw.width} ${refRaw.height}\n255\n`), await sharp(refPng).removeAlpha().raw().toBuffer()]));

      const sweeps = new Map<string, Point[]>();
      for (const r of REFERENCES.filter((x) => x.available)) {
        for (const f of r.formats.filter((x) => FORMATS.includes(x))) {
          const encode = r.name === 'ImageMagick' ? imageMagick(f) : r.encode;
          const points: Point[] = [];
          for (const q of r.settings) {
            const out = await encode(dir, q);
            const bytes = readFileSync(out).length;
            points.push({ bytes, score: score(refRaw, await rgba(out)) });
          }
          sweeps.set(`${f}|${r.name}`, points);
        }
      }

      for (const format of FORMATS) {
        for (const level of LEVELS) {
          const opts = parseOptions({ resize: { width: W }, format, ...(level === 'none' ? {} : { optimize: level }) });
          const t0 = performance.now();
          const res = await processImage(img.input, opts, DEFAULT_LIMITS);
          const ms = performance.now() - t0;
          const s = score(refRaw, await rgba(res.data));
          const key = `${format}|${level}`;
          const row: Row = rows.get(key) ?? { sluiceBytes: 0, ssim: 0, butteraugli: [], ms: 0, n: 0, ref: new Map() };
          row.sluiceBytes += res.data.length;
          row.ssim += s;
          row.ms += ms;
          row.n++;
          if (T.butteraugli !== undefined && format !== 'avif' && format !== 'webp') {
            // The 2017 butteraugli reads PNG and JPEG only.
            const out = join(dir, `sluice.${format === 'jpeg' ? 'jpg' : 'png'}`);
            writeFileSync(out, format === 'png' ? await sharp(res.data).flatten({ background: '#ffffff' }).png().toBuffer() : res.data);
            const { stdout } = await run(T.butteraugli, [join(dir, 'ref.png'), out]);
            row.butteraugli.push(Number(stdout.trim()));
          }
          for (const [k, points] of sweeps) {
            const [f, name] = k.split('|') as [Format, string];
            if (f !== format) continue;
            const agg = row.ref.get(name) ?? { bytes: 0, sluice: 0, unreached: 0 };
            const b = bytesAt(points, s);
            if (b === undefined) agg.unreached++;
            else { agg.bytes += b; agg.sluice += res.data.length; }
            row.ref.set(name, agg);
          }
          rows.set(key, row);
        }
      }
      if (AUTO) await autoRows(img.input, refRaw, sweeps, autoRows_);
      process.stderr.write(`done ${img.name}\n`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const kb = (n: number): string => (n / 1024).toFixed(1);
  const shown = REFERENCES.filter((r) => r.available && r.formats.some((f) => FORMATS.includes(f)));
  const out: string[] = [
    `Sluice optimize bench ${new Date().toISOString()}: ${images.length} images (${images.map((i) => i.name).join(', ')}) at ${W} px wide, sharp ${sharp.versions.sharp} (libvips ${sharp.versions.vips}), node ${process.version}`,
    '',
    '"saved" = 1 − Sluice bytes ÷ the reference\'s bytes at the same SSIM (interpolated over its quality sweep), summed over the images it can reach; "n/a": it never reaches that score.',
    '',
    `| format | level | Sluice KB | mean SSIM | ${T.butteraugli === undefined ? '' : 'mean butteraugli | '}ms/image | ${shown.map((r) => `saved vs ${r.name}`).join(' | ')} |`,
    `|---|---|---:|---:|${T.butteraugli === undefined ? '' : '---:|'}---:|${shown.map(() => '---:').join('|')}|`,
  ];
  for (const format of FORMATS) {
    for (const level of LEVELS) {
      const row = rows.get(`${format}|${level}`)!;
      const cells = shown.map((r) => {
        const a = row.ref.get(r.name);
        if (a === undefined) return '';
        if (a.bytes === 0) return a.unreached > 0 ? 'n/a' : '';
        const saved = `${((1 - a.sluice / a.bytes) * 100).toFixed(1)} %`;
        return a.unreached > 0 ? `${saved} (${a.unreached} n/a)` : saved;
      });
      const ba = row.butteraugli.length === 0 ? '-' : (row.butteraugli.reduce((x, y) => x + y, 0) / row.butteraugli.length).toFixed(2);
      out.push(`| ${format} | ${level} | ${kb(row.sluiceBytes)} | ${(row.ssim / row.n).toFixed(4)} | ${T.butteraugli === undefined ? '' : `${ba} | `}${(row.ms / row.n).toFixed(0)} | ${cells.join(' | ')} |`);
    }
  }
  if (AUTO) out.push('', ...autoTable(autoRows_));
  const missing = REFERENCES.filter((r) => !r.available).map((r) => r.missing);
  if (missing.length > 0) out.push('', `Not installed, so not compared: apt-get install -y --no-install-recommends ${missing.join(' ')}`);
  if (T.butteraugli === undefined && process.env.BUTTERAUGLI !== '0') out.push('', 'butteraugli not installed: apt-get install -y --no-install-recommends butteraugli');
  process.stdout.write(out.join('\n') + '\n');
}

await main();
