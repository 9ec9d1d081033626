// faceCropRegion is pure: exact expectations for the cases a reader can check by hand,
// then seeded random sweeps that compare against a brute-force search over every
// possible crop position.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import type { Face } from './types.js';
import { faceCropRegion, largestCrop } from './face-crop.js';
// Deterministic PRNG so a failure reproduces (the load tester's seeded one).
import { rng } from '../../common/rng.js';

const face = (x: number, y: number, width: number, height: number, score = 0.9): Face => ({ box: { x, y, width, height }, score });

type Region = NonNullable<ReturnType<typeof faceCropRegion>>;

function contains(r: Region, f: Face): boolean {
  return f.box.x >= r.left && f.box.y >= r.top && f.box.x + f.box.width <= r.left + r.width && f.box.y + f.box.height <= r.top + r.height;
}

function assertSane(r: Region | undefined, W: number, H: number, tw: number, th: number): Region {
  assert.ok(r, 'expected a region');
  for (const k of ['left', 'top', 'width', 'height'] as const) assert.ok(Number.isInteger(r[k]), `${k}=${r[k]} is not an integer`);
  assert.ok(r.left >= 0 && r.top >= 0, `origin ${r.left},${r.top} outside the image`);
  assert.ok(r.width >= 1 && r.height >= 1, 'empty region');
  assert.ok(r.left + r.width <= W && r.top + r.height <= H, `region ${JSON.stringify(r)} exceeds ${W}x${H}`);
  // Largest that fits: one side spans the image, the ratio is right to within rounding.
  assert.ok(r.width === W || r.height === H, `region ${JSON.stringify(r)} is not maximal in ${W}x${H}`);
  const ratio = tw / th;
  if (r.width === W) assert.ok(Math.abs(r.height - W / ratio) <= 0.5 || r.height === H || r.height === 1, `height ${r.height} vs ${W / ratio}`);
  else assert.ok(Math.abs(r.width - H * ratio) <= 0.5 || r.width === 1, `width ${r.width} vs ${H * ratio}`);
  return r;
}

describe('largestCrop', () => {
  test('spans the full height when the image is wider than the ratio, full width otherwise', () => {
    assert.deepEqual(largestCrop(1920, 1280, 1), { width: 1280, height: 1280 });
    assert.deepEqual(largestCrop(1920, 1280, 16 / 9), { width: 1920, height: 1080 });
    assert.deepEqual(largestCrop(1280, 1920, 1), { width: 1280, height: 1280 });
    assert.deepEqual(largestCrop(1000, 1000, 1), { width: 1000, height: 1000 });
    assert.deepEqual(largestCrop(1000, 1000, 100), { width: 1000, height: 10 });
    assert.deepEqual(largestCrop(1000, 1000, 1 / 5000), { width: 1, height: 1000 });
  });
});

describe('faceCropRegion: basics', () => {
  test('no faces → undefined', () => {
    assert.equal(faceCropRegion([], 800, 600, 1, 1), undefined);
  });

  test('faces entirely outside the image count as no faces', () => {
    assert.equal(faceCropRegion([face(900, 10, 50, 50), face(-100, -100, 50, 50)], 800, 600, 1, 1), undefined);
  });

  test('invalid dimensions are refused, not guessed', () => {
    for (const [w, h, tw, th] of [[0, 600, 1, 1], [800, -1, 1, 1], [800, 600, 0, 1], [800, 600, 1, NaN], [800, 600, Infinity, 1]] as const) {
      assert.throws(() => faceCropRegion([face(0, 0, 10, 10)], w, h, tw, th), RangeError);
    }
  });

  test('only the ratio matters, not the target size', () => {
    const faces = [face(500, 100, 120, 120)];
    const a = faceCropRegion(faces, 1600, 900, 1, 1);
    assert.deepEqual(faceCropRegion(faces, 1600, 900, 300, 300), a);
    assert.deepEqual(faceCropRegion(faces, 1600, 900, 4000, 4000), a);
  });

  test('same ratio as the image → the whole image', () => {
    assert.deepEqual(faceCropRegion([face(10, 10, 30, 30)], 1600, 900, 16, 9), { left: 0, top: 0, width: 1600, height: 900 });
  });
});

describe('faceCropRegion: one face', () => {
  test('centred on the face when it is away from the borders', () => {
    // 1600x900 → square 900x900; face centre x = 800 → left = 800 - 450 = 350.
    const r = assertSane(faceCropRegion([face(760, 400, 80, 80)], 1600, 900, 1, 1), 1600, 900, 1, 1);
    assert.deepEqual(r, { left: 350, top: 0, width: 900, height: 900 });
  });

  test('face at the left edge → crop flush left', () => {
    const r = faceCropRegion([face(0, 300, 100, 100)], 1600, 900, 1, 1);
    assert.deepEqual(r, { left: 0, top: 0, width: 900, height: 900 });
  });

  test('face at the right edge → crop flush right', () => {
    const r = faceCropRegion([face(1500, 300, 100, 100)], 1600, 900, 1, 1);
    assert.deepEqual(r, { left: 700, top: 0, width: 900, height: 900 });
  });

  test('portrait image: face at the top / bottom edge → crop flush top / bottom', () => {
    assert.deepEqual(faceCropRegion([face(300, 0, 200, 200)], 900, 1600, 1, 1), { left: 0, top: 0, width: 900, height: 900 });
    assert.deepEqual(faceCropRegion([face(300, 1450, 200, 150)], 900, 1600, 1, 1), { left: 0, top: 700, width: 900, height: 900 });
    // 16:9 of a 900-wide portrait is 900x506; the face centre y=800 → top = 800 - 253 = 547.
    assert.deepEqual(faceCropRegion([face(400, 750, 100, 100)], 900, 1600, 16, 9), { left: 0, top: 547, width: 900, height: 506 });
  });

  test('a box poking past the border is clipped, then handled like an edge face', () => {
    const r = faceCropRegion([face(-40, -40, 140, 140)], 1600, 900, 1, 1);
    assert.deepEqual(r, { left: 0, top: 0, width: 900, height: 900 });
    const s = faceCropRegion([face(1550, 850, 200, 200)], 1600, 900, 1, 1);
    assert.deepEqual(s, { left: 700, top: 0, width: 900, height: 900 });
  });

  test('fractional boxes are contained after rounding outward', () => {
    const f = face(1499.6, 10.2, 100.3, 99.9);
    const r = assertSane(faceCropRegion([f], 1600, 900, 1, 1), 1600, 900, 1, 1);
    assert.ok(contains(r, f), JSON.stringify(r));
  });

  test('a face larger than the crop: crop centred on it', () => {
    // 16:9 of 1000x1000 is 1000x563; a 700-tall face centred at y=500 → top = 500 - 281.5 → 219 (rounded).
    const r = assertSane(faceCropRegion([face(150, 150, 700, 700)], 1000, 1000, 16, 9), 1000, 1000, 16, 9);
    assert.equal(r.top, Math.round(500 - r.height / 2));
  });
});

describe('faceCropRegion: several faces', () => {
  test('group that fits with margin → centred on the group', () => {
    // Faces span x 500..1100, centre 800; square crop 900 → left 350.
    const faces = [face(500, 300, 100, 100), face(1000, 350, 100, 100)];
    const r = faceCropRegion(faces, 1600, 900, 1, 1)!;
    assert.deepEqual(r, { left: 350, top: 0, width: 900, height: 900 });
    assert.ok(faces.every((f) => contains(r, f)));
  });

  test('off-centre group near an edge is still contained (shifted, not centred)', () => {
    const faces = [face(0, 100, 100, 100), face(700, 100, 100, 100)];
    const r = faceCropRegion(faces, 1600, 900, 1, 1)!;
    assert.equal(r.left, 0);
    assert.ok(faces.every((f) => contains(r, f)));
  });

  test('group that barely fits → every face, centred on the group', () => {
    // Span 50..930 (880) of a 900 crop in a 2000-wide image: 10 px to spare each side.
    const faces = [face(50, 100, 100, 100), face(830, 100, 100, 100)];
    const r = faceCropRegion(faces, 2000, 900, 1, 1)!;
    assert.ok(faces.every((f) => contains(r, f)), JSON.stringify(r));
    // The group's centre is 490 → left = 490 - 450.
    assert.equal(r.left, 40);
  });

  test('faces wider than the crop: keeps the largest group of whole faces', () => {
    // Square crop 900 of 3000x900. Three faces at the left within 900, one far right.
    const left3 = [face(100, 100, 100, 100), face(400, 100, 100, 100), face(800, 100, 100, 100)];
    const far = face(2800, 100, 100, 100);
    const r = faceCropRegion([...left3, far], 3000, 900, 1, 1)!;
    assert.ok(left3.every((f) => contains(r, f)), JSON.stringify(r));
    assert.ok(!contains(r, far));
    // Recentred on the three kept (span 100..900 → centre 500 → left 50).
    assert.equal(r.left, 50);
  });

  test('a span a fraction of a pixel too wide does not count as fitting', () => {
    // 100.4..1000.6 is 900.2 px: no integer 900-px window holds both, so one is chosen (the higher score).
    const a = face(100.4, 100, 100, 100, 0.6);
    const b = face(900.6, 100, 100, 100, 0.9);
    const r = faceCropRegion([a, b], 3000, 900, 1, 1)!;
    assert.ok(contains(r, b), JSON.stringify(r));
    assert.ok(!contains(r, a), JSON.stringify(r));
  });

  test('faces wider than the crop, equal counts: the higher total score wins', () => {
    const a = face(0, 100, 200, 200, 0.5);
    const b = face(2800, 100, 200, 200, 0.95);
    const r = faceCropRegion([a, b], 3000, 900, 1, 1)!;
    assert.ok(contains(r, b) && !contains(r, a), JSON.stringify(r));
    const s = faceCropRegion([{ ...a, score: 0.99 }, b], 3000, 900, 1, 1)!;
    assert.ok(contains(s, a) && !contains(s, b), JSON.stringify(s));
  });

  test('every face wider than the crop: centred on the faces, inside the image', () => {
    const faces = [face(0, 0, 1000, 1000), face(1000, 0, 1000, 1000)];
    const r = assertSane(faceCropRegion(faces, 2000, 1000, 1, 2), 2000, 1000, 1, 2);
    assert.deepEqual(r, { left: 750, top: 0, width: 500, height: 1000 });
  });
});

describe('faceCropRegion: seeded sweeps against brute force', () => {
  const ratios: [number, number][] = [[1, 1], [16, 9], [9, 16], [4, 3], [3, 4], [21, 9], [1, 3], [7, 1]];

  test('output is always integral, maximal, inside the image; every face kept whenever some position keeps them all', () => {
    const rnd = rng(0xface);
    let checked = 0;
    for (let i = 0; i < 3000; i++) {
      const W = 20 + Math.floor(rnd() * 400);
      const H = 20 + Math.floor(rnd() * 400);
      const [tw, th] = ratios[i % ratios.length]!;
      const n = 1 + Math.floor(rnd() * 5);
      const faces: Face[] = [];
      for (let k = 0; k < n; k++) {
        const w = 1 + rnd() * W * 0.4;
        const h = 1 + rnd() * H * 0.4;
        // Some boxes hang over the border, some are fractional.
        faces.push(face(rnd() * (W + 20) - 10 - w / 2, rnd() * (H + 20) - 10 - h / 2, w, h, rnd()));
      }
      const r = faceCropRegion(faces, W, H, tw, th);
      const clipped = faces
        .map((f) => {
          const x0 = Math.max(0, f.box.x), y0 = Math.max(0, f.box.y);
          const x1 = Math.min(W, f.box.x + f.box.width), y1 = Math.min(H, f.box.y + f.box.height);
          return face(x0, y0, x1 - x0, y1 - y0, f.score);
        })
        .filter((f) => f.box.width > 0 && f.box.height > 0);
      if (clipped.length === 0) {
        assert.equal(r, undefined);
        continue;
      }
      const reg = assertSane(r, W, H, tw, th);
      // Brute force: the most whole (clipped) faces any position of this size can hold.
      let best = 0;
      for (let left = 0; left + reg.width <= W; left++) {
        for (let top = 0; top + reg.height <= H; top++) {
          const c = clipped.filter((f) => contains({ left, top, width: reg.width, height: reg.height }, f)).length;
          if (c > best) best = c;
        }
      }
      const kept = clipped.filter((f) => contains(reg, f)).length;
      assert.equal(kept, best, `case ${i}: kept ${kept} of ${clipped.length}, brute force ${best}; ${W}x${H} ${tw}:${th} ${JSON.stringify(clipped)} → ${JSON.stringify(reg)}`);
      checked++;
    }
    assert.ok(checked > 2500, `only ${checked} cases had faces`);
  });

  test('when the faces fit, the region is centred on them exactly unless a border stops it', () => {
    const rnd = rng(42);
    let pushed = 0;
    let centred = 0;
    for (let i = 0; i < 2000; i++) {
      const W = 100 + Math.floor(rnd() * 900);
      const H = 100 + Math.floor(rnd() * 900);
      const [tw, th] = ratios[i % ratios.length]!;
      const { width, height } = largestCrop(W, H, tw / th);
      const horizontal = width < W;
      const size = horizontal ? width : height;
      const extent = horizontal ? W : H;
      // Two faces whose joint span fits the free axis.
      const span = 1 + Math.floor(rnd() * size);
      const at = Math.floor(rnd() * (extent - span + 1));
      const len = Math.max(1, Math.floor(span / 3));
      const other = horizontal ? H : W;
      const mk = (p: number) => (horizontal ? face(p, 0, len, Math.min(other, 10)) : face(0, p, Math.min(other, 10), len));
      const faces = [mk(at), mk(at + span - len)];
      const r = assertSane(faceCropRegion(faces, W, H, tw, th), W, H, tw, th);
      assert.ok(faces.every((f) => contains(r, f)), `case ${i}`);
      if (size === extent) continue;
      const start = horizontal ? r.left : r.top;
      const ideal = Math.round(at + span / 2 - size / 2);
      const expected = Math.min(extent - size, Math.max(0, ideal));
      assert.equal(start, expected, `case ${i}`);
      if (expected === ideal) centred++;
      else pushed++;
    }
    // Both branches were exercised.
    assert.ok(centred > 100 && pushed > 100, `centred ${centred}, pushed ${pushed}`);
  });
});
