// The detector on real photos: the six group photos shipped in @vladmandic/face-api's
// demo/, background cut-outs of those same photos with nobody in them, and an
// EXIF-rotated copy. One detector (one model load) serves the whole file.
//
// Face counts were measured with this detector and checked by eye on rendered boxes:
// every box is a real face and no face is missed. Scores of true faces are ≥ 0.53 and the
// only sub-threshold false positive seen (sample2, an ear) scores 0.27, so the default
// minScore 0.4 separates them with room on both sides.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import sharp from 'sharp';

import { ImageError, type Detection, type Face } from '../image/types.js';
import { faceCropRegion } from './face-crop.js';
import { createFaceDetector, type FaceDetectorHandle } from './face-detector.js';

const require = createRequire(import.meta.url);
const DEMO = join(dirname(require.resolve('@vladmandic/face-api')), '..', 'demo');
const sample = (n: number) => readFileSync(join(DEMO, `sample${n}.jpg`));

const EXPECTED: Record<number, number> = { 1: 3, 2: 3, 3: 3, 4: 4, 5: 5, 6: 4 };

let det: FaceDetectorHandle;
let startMs = 0;
const found = new Map<number, Detection>();

before(async () => {
  const t0 = performance.now();
  det = await createFaceDetector({ workers: 1, maxQueue: 2 });
  startMs = performance.now() - t0;
});

after(async () => {
  await det?.close();
});

function assertBoxesInside(d: Detection, label: string): void {
  for (const f of d.faces) {
    const { x, y, width, height } = f.box;
    for (const v of [x, y, width, height]) assert.ok(Number.isInteger(v), `${label}: non-integer box ${JSON.stringify(f.box)}`);
    assert.ok(x >= 0 && y >= 0 && width > 0 && height > 0, `${label}: bad box ${JSON.stringify(f.box)}`);
    assert.ok(x + width <= d.width && y + height <= d.height, `${label}: box ${JSON.stringify(f.box)} outside ${d.width}x${d.height}`);
    assert.ok(f.score >= 0.4 && f.score <= 1, `${label}: score ${f.score}`);
  }
  for (let i = 1; i < d.faces.length; i++) assert.ok(d.faces[i - 1]!.score >= d.faces[i]!.score, `${label}: not sorted by score`);
}

function iou(a: Face['box'], b: Face['box']): number {
  const ix = Math.max(0, Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x));
  const iy = Math.max(0, Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y));
  const inter = ix * iy;
  return inter / (a.width * a.height + b.width * b.height - inter);
}

describe('face detector: start-up', () => {
  test('runs on the wasm backend, from the installed binary, and says how long loading took', (t) => {
    assert.equal(det.info.backend, 'wasm');
    assert.match(det.info.wasmFile, /tfjs-backend-wasm(-simd)?\.wasm$/);
    assert.ok(statSync(det.info.wasmFile).size > 100_000);
    assert.ok(det.info.loadMs > 0);
    t.diagnostic(`worker load (model + warm-up) ${det.info.loadMs} ms, createFaceDetector ${startMs.toFixed(0)} ms`);
  });

  test('refuses to start when tfjs falls back from wasm (corrupt .wasm binaries)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-badwasm-'));
    try {
      for (const f of ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm']) {
        writeFileSync(join(dir, f), 'not a wasm module');
      }
      await assert.rejects(createFaceDetector({ wasmDir: dir, startTimeoutMs: 30_000 }), /not 'wasm'; refusing to start/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('refuses to start when the wasm binaries are missing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-nowasm-'));
    try {
      await assert.rejects(createFaceDetector({ wasmDir: dir }), /wasm binary not found/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('face detector: demo photos', () => {
  for (const n of [1, 2, 3, 4, 5, 6]) {
    test(`sample${n}.jpg has ${EXPECTED[n]} faces, boxes inside the image`, async () => {
      const buf = sample(n);
      const d = await det.detect(buf);
      const meta = await sharp(buf).metadata();
      assert.equal(d.width, meta.width);
      assert.equal(d.height, meta.height);
      assert.equal(d.faces.length, EXPECTED[n], JSON.stringify(d.faces));
      assertBoxesInside(d, `sample${n}`);
      // A face in these photos is 200–450 px across; anything far off that is a wrong scale.
      for (const f of d.faces) assert.ok(f.box.width > 150 && f.box.width < 500, JSON.stringify(f.box));
      found.set(n, d);
    });
  }

  test('an EXIF-rotated copy gives the same boxes in the upright frame', async () => {
    // Pixels stored rotated 90° anticlockwise, tagged orientation 6 (display: rotate 90° clockwise).
    const stored = await sharp(sample(1)).rotate(-90).jpeg({ quality: 92 }).toBuffer();
    const tagged = await sharp(stored).withMetadata({ orientation: 6 }).jpeg({ quality: 92 }).toBuffer();
    assert.equal((await sharp(tagged).metadata()).orientation, 6);
    const upright = found.get(1) ?? (await det.detect(sample(1)));
    const d = await det.detect(tagged);
    assert.equal(d.width, upright.width);
    assert.equal(d.height, upright.height);
    assert.equal(d.faces.length, upright.faces.length);
    for (const f of upright.faces) {
      const best = Math.max(...d.faces.map((g) => iou(f.box, g.box)));
      assert.ok(best > 0.8, `face ${JSON.stringify(f.box)} best IoU ${best.toFixed(2)} in ${JSON.stringify(d.faces)}`);
    }
  });
});

describe('face detector: photos with no face', () => {
  // Background cut from the demo photos themselves (same camera, lighting and JPEG
  // pipeline as the positives, so only "is there a face" differs): the purple wall and
  // window right of the group in sample4, and the stair railing and wall left of the
  // group in sample5. Both were viewed to confirm nobody is in them. A cut-out of the
  // door in sample3 was rejected: its lock plate looks like a face to BlazeFace (0.63).
  const cuts = [
    { file: 4, region: { left: 1600, top: 0, width: 320, height: 750 } },
    { file: 5, region: { left: 0, top: 0, width: 240, height: 800 } },
  ];
  for (const { file, region } of cuts) {
    test(`sample${file} background ${region.width}x${region.height} → zero faces`, async () => {
      const img = await sharp(sample(file)).extract(region).jpeg({ quality: 90 }).toBuffer();
      const d = await det.detect(img);
      assert.equal(d.width, region.width);
      assert.equal(d.height, region.height);
      assert.deepEqual(d.faces, []);
    });
  }
});

describe('face detector: pool behaviour', () => {
  test('the bounded queue refuses work beyond one in flight + maxQueue with 503 overloaded', async () => {
    const img = sample(3);
    const calls = Array.from({ length: 5 }, () => det.detect(img));
    assert.deepEqual(det.load(), { inFlight: 1, queued: 2 });
    const settled = await Promise.allSettled(calls);
    const ok = settled.filter((s) => s.status === 'fulfilled');
    const refused = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
    assert.equal(ok.length, 3);
    assert.equal(refused.length, 2);
    for (const r of refused) {
      assert.ok(r.reason instanceof ImageError, String(r.reason));
      assert.equal(r.reason.status, 503);
      assert.equal(r.reason.code, 'overloaded');
      assert.match(r.reason.message, /busy: 2 images already waiting \(max 2\)/);
    }
    for (const s of ok) assert.equal((s as PromiseFulfilledResult<Detection>).value.faces.length, EXPECTED[3]);
    assert.deepEqual(det.load(), { inFlight: 0, queued: 0 });
  });

  test('bytes that are not an image → 422, and the worker keeps serving', async () => {
    await assert.rejects(det.detect(Buffer.from('definitely not a jpeg, just text'.repeat(20))), (e: unknown) => {
      assert.ok(e instanceof ImageError);
      assert.equal(e.status, 422);
      assert.equal(e.code, 'unprocessable_image');
      return true;
    });
    await assert.rejects(det.detect(Buffer.alloc(0)), ImageError);
    assert.equal((await det.detect(sample(1))).faces.length, EXPECTED[1]);
  });

  test('cost: a 640×480 image takes the wasm backend\'s CPU time, far below a cpu-backend fallback\'s', async (t) => {
    const imgs = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => sharp(sample(n)).resize(640, 480, { fit: 'cover' }).jpeg().toBuffer()));
    for (const img of imgs) await det.detect(img);
    const rounds = 30;
    const t0 = performance.now();
    // CPU time of this process (the detector's worker thread included), not wall time: a
    // busy machine makes an image wait for a core, not cost more of one.
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < rounds; i++) await det.detect(imgs[i % imgs.length]!);
    const cpu = process.cpuUsage(cpu0);
    const cpuMs = (cpu.user + cpu.system) / 1000 / rounds;
    t.diagnostic(`640x480: ${cpuMs.toFixed(1)} ms CPU, ${((performance.now() - t0) / rounds).toFixed(1)} ms wall per image (decode + inference + round trip, one worker)`);
    // ~35 ms measured alone; a cpu-backend fallback costs ~15x that.
    assert.ok(cpuMs < 250, `${cpuMs.toFixed(1)} ms of CPU per image`);
  });
});

describe('face crop on detected faces', () => {
  const ratios: [number, number, string][] = [
    [1, 1, '1:1'],
    [16, 9, '16:9'],
    [4, 5, '4:5'],
  ];
  test('for every demo photo and ratio, the crop holds every face whenever any crop of that size can', async (t) => {
    let allKept = 0;
    for (const n of [1, 2, 3, 4, 5, 6]) {
      const d = found.get(n) ?? (await det.detect(sample(n)));
      assert.ok(d.faces.length > 0);
      for (const [tw, th, label] of ratios) {
        const r = faceCropRegion(d.faces, d.width, d.height, tw, th);
        assert.ok(r, `sample${n} ${label}: no region`);
        assert.ok(r.left >= 0 && r.top >= 0 && r.left + r.width <= d.width && r.top + r.height <= d.height);
        assert.ok(r.width < d.width || r.height < d.height || (tw * d.height === th * d.width), `sample${n} ${label}: crop not smaller`);
        const inside = d.faces.filter(
          (f) => f.box.x >= r.left && f.box.y >= r.top && f.box.x + f.box.width <= r.left + r.width && f.box.y + f.box.height <= r.top + r.height,
        );
        const minX = Math.min(...d.faces.map((f) => f.box.x));
        const maxX = Math.max(...d.faces.map((f) => f.box.x + f.box.width));
        const minY = Math.min(...d.faces.map((f) => f.box.y));
        const maxY = Math.max(...d.faces.map((f) => f.box.y + f.box.height));
        const possible = maxX - minX <= r.width && maxY - minY <= r.height;
        if (possible) {
          assert.equal(inside.length, d.faces.length, `sample${n} ${label}: ${JSON.stringify(r)} misses faces of ${JSON.stringify(d.faces)}`);
          allKept++;
        } else {
          // Documented behaviour: as many whole faces as fit, never none when one fits.
          assert.ok(inside.length >= 1, `sample${n} ${label}: kept no face`);
          t.diagnostic(`sample${n} ${label}: faces span ${maxX - minX}x${maxY - minY} > crop ${r.width}x${r.height}; kept ${inside.length}/${d.faces.length}`);
        }
      }
    }
    // Measured: these group photos are wider than tall, so a square or portrait crop
    // (full image height) usually cannot hold the whole row of faces; 16:9 can, except in
    // sample5 whose faces are stacked on stairs over 1129 px of a 1398 px-high photo.
    // 7 of the 18 pairs can keep everyone (16:9 for samples 1, 2, 3, 4, 6; 1:1 for 3, 4).
    assert.equal(allKept, 7);
  });
});

describe('face detector: close', () => {
  test('after close, detect is refused with 503 and close is idempotent', async () => {
    await det.close();
    await assert.rejects(det.detect(sample(1)), (e: unknown) => e instanceof ImageError && e.status === 503 && e.code === 'unavailable');
    await det.close();
  });
});
