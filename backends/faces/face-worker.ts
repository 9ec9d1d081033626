// One inference thread: Human's BlazeFace on the tfjs wasm backend, fed by sharp.
//
// Why the odd loading dance: the only Human build that could use the installed
// @tensorflow/tfjs-core + tfjs-backend-wasm (human.node-wasm.js) also requires
// @tensorflow/tfjs-converter, which is not installed. The self-contained ESM bundle
// (human.esm.js, with its own converter) is built for browsers: on import, when tfjs
// reports IS_NODE it constructs a Node platform from a stubbed-out `util` and throws,
// and its bundled emscripten loader cannot read files under ESM. tfjs keeps its engine,
// kernel registry and Tensor class on globalThis precisely so that several copies
// cooperate, so we (1) load the real tfjs-core and the real Node build of the wasm
// backend first (they register the 'wasm' backend factory that can read the .wasm
// file), (2) hide IS_NODE only while the bundle evaluates, so it keeps the real Node
// platform instead of building its broken one, then (3) restore it. Models are read
// from the package's files by an IO router: nothing is ever fetched.

import { parentPort, workerData } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { readFile, access } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';

import type { Face } from '../image/types.js';

export interface WorkerInit {
  readonly minScore: number;
  readonly maxFaces: number;
  readonly maxInputPixels: number;
  /** Longest side fed to the model; BlazeFace looks at 256×256 anyway. */
  readonly maxSide: number;
  /** Folder holding the tfjs .wasm binaries; undefined = the installed package's dist/. */
  readonly wasmDir: string | undefined;
}

export type WorkerRequest = { readonly id: number; readonly image: Uint8Array };

export type WorkerReply =
  | { readonly type: 'ready'; readonly backend: string; readonly loadMs: number; readonly wasmFile: string }
  | { readonly type: 'init-error'; readonly message: string }
  | {
      readonly type: 'result';
      readonly id: number;
      readonly faces: Face[];
      readonly width: number;
      readonly height: number;
      readonly inferMs: number;
    }
  // 422: the client's image (an ImageError); 500: the detector's own failure (never shown to a client).
  | { readonly type: 'error'; readonly id: number; readonly status: 422; readonly code: 'unprocessable_image'; readonly message: string }
  | { readonly type: 'error'; readonly id: number; readonly status: 500; readonly code: 'detector_failed'; readonly message: string };

// The slice of the tfjs / Human surface we touch: the bundle ships no usable types for
// a file-path import, and pulling its full .d.ts tree in would couple us to it.
interface TfCore {
  env(): { set(flag: string, value: boolean): void; getAsync(flag: string): Promise<boolean> };
  getBackend(): string;
  findBackend(name: string): unknown;
}
interface TfWasm {
  setWasmPaths(prefix: string): void;
}
interface TensorLike {
  dispose(): void;
}
interface HumanTf {
  getBackend(): string;
  tensor3d(values: Int32Array | Uint8Array, shape: [number, number, number], dtype: 'int32'): TensorLike;
  io: { registerLoadRouter(router: (url: unknown) => unknown): void };
}
interface HumanFace {
  box: [number, number, number, number];
  score: number;
  boxScore?: number;
}
interface HumanInstance {
  tf: HumanTf;
  init(): Promise<void>;
  load(): Promise<void>;
  detect(input: TensorLike): Promise<{ face: HumanFace[]; error?: string | null }>;
}
type HumanCtor = new (config: Record<string, unknown>) => HumanInstance;

const require = createRequire(import.meta.url);

// package.json of Human exports no './package.json' and its 'dist/…' keys lack the './',
// so resolve the package's main file (resolution only, nothing is loaded) and walk from it.
function humanDist(): string {
  return dirname(require.resolve('@vladmandic/human'));
}

function modelRouter(url: unknown): unknown {
  if (typeof url !== 'string' || !url.startsWith('file://')) return null;
  return {
    async load() {
      const jsonUrl = new URL(url);
      const json = JSON.parse(await readFile(jsonUrl, 'utf8')) as {
        modelTopology: unknown;
        format?: string;
        generatedBy?: string;
        convertedBy?: string;
        signature?: unknown;
        userDefinedMetadata?: unknown;
        weightsManifest: { paths: string[]; weights: unknown[] }[];
      };
      const specs: unknown[] = [];
      const parts: Buffer[] = [];
      for (const group of json.weightsManifest) {
        specs.push(...group.weights);
        for (const p of group.paths) parts.push(await readFile(new URL(p, jsonUrl)));
      }
      const all = Buffer.concat(parts);
      return {
        modelTopology: json.modelTopology,
        format: json.format,
        generatedBy: json.generatedBy,
        convertedBy: json.convertedBy,
        signature: json.signature,
        userDefinedMetadata: json.userDefinedMetadata,
        weightSpecs: specs,
        weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
      };
    },
  };
}

async function loadHuman(init: WorkerInit): Promise<{ human: HumanInstance; tfc: TfCore; wasmFile: string }> {
  const tfc = require('@tensorflow/tfjs-core') as TfCore;
  const wasm = require('@tensorflow/tfjs-backend-wasm') as TfWasm;
  const wasmDir = init.wasmDir ?? dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
  // Node has no multithreaded wasm path in tfjs, but say so: one thread per worker is
  // the design (the pool is the parallelism), and a mis-detected 'threaded' variant
  // would try to spawn workers from a Blob URL.
  tfc.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  const simd = await tfc.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  const wasmFile = join(wasmDir, simd ? 'tfjs-backend-wasm-simd.wasm' : 'tfjs-backend-wasm.wasm');
  await access(wasmFile).catch(() => {
    throw new Error(`face detector: wasm binary not found at ${wasmFile}`);
  });
  wasm.setWasmPaths(wasmDir + '/');

  const bundle = join(humanDist(), 'human.esm.js');
  tfc.env().set('IS_NODE', false);
  // The bundle re-registers ~180 wasm kernels and the backend we already registered;
  // tfjs warns once per kernel. Those exact lines are expected noise, anything else passes.
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    const line = String(args[0]);
    if (/^The kernel '.*' for backend '.*' is already registered$/.test(line) || /backend was already registered/.test(line)) return;
    warn(...args);
  };
  let mod: { Human: HumanCtor };
  try {
    mod = (await import(pathToFileURL(bundle).href)) as { Human: HumanCtor };
  } finally {
    tfc.env().set('IS_NODE', true);
    console.warn = warn;
  }

  const modelDir = join(dirname(humanDist()), 'models');
  const human = new mod.Human({
    backend: 'wasm',
    wasmPath: wasmDir + '/',
    modelBasePath: pathToFileURL(modelDir).href + '/',
    debug: false,
    warmup: 'none',
    cacheModels: false,
    // Human otherwise compares frames and may return the previous frame's faces.
    cacheSensitivity: 0,
    skipAllowed: false,
    async: true,
    filter: { enabled: false },
    face: {
      enabled: true,
      detector: {
        rotation: false,
        maxDetected: init.maxFaces,
        minConfidence: init.minScore,
        skipFrames: 0,
        skipTime: 0,
        return: false,
      },
      mesh: { enabled: false },
      attention: { enabled: false },
      iris: { enabled: false },
      emotion: { enabled: false },
      description: { enabled: false },
      antispoof: { enabled: false },
      liveness: { enabled: false },
    },
    body: { enabled: false },
    hand: { enabled: false },
    object: { enabled: false },
    gesture: { enabled: false },
    segmentation: { enabled: false },
  });
  human.tf.io.registerLoadRouter(modelRouter);
  await human.init();
  // The whole point of this module: tfjs falls back to its cpu backend without a word
  // when wasm fails, and that is ~15× slower. Refuse instead.
  const active = tfc.getBackend();
  if (active !== 'wasm' || human.tf.getBackend() !== 'wasm') {
    throw new Error(`face detector: tfjs backend is '${active}', not 'wasm'; refusing to start`);
  }
  await human.load();
  return { human, tfc, wasmFile };
}

async function decode(image: Uint8Array, init: WorkerInit) {
  const input = sharp(image, { limitInputPixels: init.maxInputPixels, failOn: 'error' });
  const meta = await input.metadata();
  const rawW = meta.width ?? 0;
  const rawH = meta.height ?? 0;
  // Orientations 5–8 swap the axes; boxes must come back in the oriented frame.
  const swap = (meta.orientation ?? 1) >= 5;
  const width = swap ? rawH : rawW;
  const height = swap ? rawW : rawH;
  const { data, info } = await input
    .rotate()
    .resize({ width: init.maxSide, height: init.maxSide, fit: 'inside', withoutEnlargement: true })
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
  return { data, w: info.width, h: info.height, width, height };
}

function toFaces(found: HumanFace[], sx: number, sy: number, width: number, height: number, minScore: number): Face[] {
  const faces: Face[] = [];
  for (const f of found) {
    const score = f.score ?? f.boxScore ?? 0;
    if (!(score >= minScore)) continue;
    const [bx, by, bw, bh] = f.box;
    // Enclose the model's box (floor/ceil) and clip to the image: Human's boxes are
    // enlarged around the face and can poke past the border.
    const x0 = Math.max(0, Math.floor(bx * sx));
    const y0 = Math.max(0, Math.floor(by * sy));
    const x1 = Math.min(width, Math.ceil((bx + bw) * sx));
    const y1 = Math.min(height, Math.ceil((by + bh) * sy));
    if (x1 <= x0 || y1 <= y0) continue;
    faces.push({ box: { x: x0, y: y0, width: x1 - x0, height: y1 - y0 }, score: Math.round(score * 1e4) / 1e4 });
  }
  faces.sort((a, b) => b.score - a.score);
  return faces;
}

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('face-worker must run in a worker thread');
  const init = workerData as WorkerInit;
  const t0 = performance.now();
  let loaded: Awaited<ReturnType<typeof loadHuman>>;
  try {
    loaded = await loadHuman(init);
    // One throwaway pass so the first real request doesn't pay kernel setup (~60 ms).
    const blank = loaded.human.tf.tensor3d(new Int32Array(64 * 64 * 3), [64, 64, 3], 'int32');
    try {
      await loaded.human.detect(blank);
    } finally {
      blank.dispose();
    }
  } catch (err) {
    port.postMessage({ type: 'init-error', message: err instanceof Error ? err.message : String(err) } satisfies WorkerReply);
    return;
  }
  const { human, tfc, wasmFile } = loaded;
  port.postMessage({
    type: 'ready',
    backend: tfc.getBackend(),
    loadMs: Math.round(performance.now() - t0),
    wasmFile,
  } satisfies WorkerReply);

  // The pool sends one job at a time per worker, so no queue lives here.
  const answer = async (msg: WorkerRequest): Promise<WorkerReply> => {
    const { id } = msg;
    let decoded: Awaited<ReturnType<typeof decode>>;
    try {
      decoded = await decode(msg.image, init);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      return { type: 'error', id, status: 422, code: 'unprocessable_image', message: `cannot decode image: ${message}` };
    }
    const t1 = performance.now();
    const { data, w, h, width, height } = decoded;
    const tensor = human.tf.tensor3d(new Uint8Array(data.buffer, data.byteOffset, data.length), [h, w, 3], 'int32');
    let result: Awaited<ReturnType<HumanInstance['detect']>>;
    try {
      result = await human.detect(tensor);
    } finally {
      tensor.dispose();
    }
    if (result.error) throw new Error(result.error);
    const faces = toFaces(result.face, width / w, height / h, width, height, init.minScore);
    return { type: 'result', id, faces, width, height, inferMs: performance.now() - t1 };
  };
  // An event handler's promise is nobody's: every outcome, a failure included, becomes a reply.
  port.on('message', (msg: WorkerRequest) => {
    answer(msg).then((reply) => port.postMessage(reply), (err: unknown) => {
      const message = err instanceof Error ? err.message : String(err);
      port.postMessage({ type: 'error', id: msg.id, status: 500, code: 'detector_failed', message } satisfies WorkerReply);
    });
  });
}

if (parentPort) void main();
