// The face detector the image service calls: a small pool of worker threads, each
// holding one BlazeFace model on the tfjs wasm backend (see face-worker.ts for why the
// loading looks the way it does). Inference is CPU-bound and ~50 ms, so it must stay off
// the event loop; the queue in front of the pool is bounded so a burst of /v1/detect or
// crop:face requests sheds load (503 overloaded) instead of growing memory.

import { Worker } from 'node:worker_threads';

import { DEFAULT_LIMITS, ImageError } from '../image/types.js';
import type { Detection, FaceDetector } from '../image/types.js';
import type { WorkerInit, WorkerReply, WorkerRequest } from './face-worker.js';

export interface FaceDetectorOptions {
  /** Worker threads, each with its own model copy (~30 MB). Default 1. */
  workers?: number;
  /** Faces scoring below this are dropped. Default 0.4 (see README of faces/ in the report). */
  minScore?: number;
  /** At most this many faces per image. Default 20. */
  maxFaces?: number;
  /** Jobs allowed to wait while every worker is busy; more are refused. Default 8 per worker. */
  maxQueue?: number;
  /** Per-image budget once a worker has it; on expiry the worker is replaced. Default 10 s. */
  timeoutMs?: number;
  /** Refused before decoding beyond this many pixels. Default DEFAULT_LIMITS.maxInputPixels. */
  maxInputPixels?: number;
  /** Images are shrunk to this longest side before inference. Default 1024. */
  maxSide?: number;
  /** Worker start budget (model load included). Default 60 s. */
  startTimeoutMs?: number;
  /** Folder with the tfjs .wasm binaries. Default: the installed @tensorflow/tfjs-backend-wasm/dist. */
  wasmDir?: string;
}

export interface FaceDetectorHandle {
  readonly detect: FaceDetector;
  close(): Promise<void>;
  /** Facts from worker start-up: the tf backend every worker verified, and load time. */
  readonly info: { readonly backend: string; readonly loadMs: number; readonly workers: number; readonly wasmFile: string };
  /** For X-Backend-Load and /metrics. */
  load(): { inFlight: number; queued: number };
}

interface Job {
  readonly id: number;
  readonly image: Buffer;
  resolve(d: Detection): void;
  reject(e: Error): void;
}

interface Slot {
  worker: Worker | undefined;
  job: Job | undefined;
  timer: NodeJS.Timeout | undefined;
  /** Set while a replacement worker loads; the slot takes no work meanwhile. */
  starting: boolean;
  dead: boolean;
}

type Ready = Extract<WorkerReply, { type: 'ready' }>;

const WORKER_URL = new URL('./face-worker.js', import.meta.url);

function startWorker(init: WorkerInit, startTimeoutMs: number): Promise<{ worker: Worker; ready: Ready }> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_URL, { workerData: init });
    // Specific listeners are removed, never all: Worker wires its own internals through
    // the same emitter, and removeAllListeners() silently stops message delivery.
    const detach = () => {
      clearTimeout(timer);
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    const fail = (err: Error) => {
      detach();
      void worker.terminate();
      reject(err);
    };
    const onMessage = (msg: WorkerReply) => {
      if (msg.type === 'ready') {
        detach();
        resolve({ worker, ready: msg });
      } else if (msg.type === 'init-error') {
        fail(new Error(msg.message));
      } else {
        fail(new Error(`face detector: unexpected first message '${msg.type}' from worker`));
      }
    };
    const onError = (err: Error) => fail(err);
    const onExit = (code: number) => fail(new Error(`face detector: worker exited with code ${code} while starting`));
    const timer = setTimeout(() => fail(new Error(`face detector: worker did not start within ${startTimeoutMs} ms`)), startTimeoutMs);
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
  });
}

export async function createFaceDetector(opts: FaceDetectorOptions = {}): Promise<FaceDetectorHandle> {
  const workers = Math.max(1, Math.floor(opts.workers ?? 1));
  const maxQueue = Math.max(0, Math.floor(opts.maxQueue ?? 8 * workers));
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const startTimeoutMs = opts.startTimeoutMs ?? 60_000;
  const init: WorkerInit = {
    minScore: opts.minScore ?? 0.4,
    maxFaces: Math.max(1, Math.floor(opts.maxFaces ?? 20)),
    maxInputPixels: opts.maxInputPixels ?? DEFAULT_LIMITS.maxInputPixels,
    maxSide: Math.max(64, Math.floor(opts.maxSide ?? 1024)),
    wasmDir: opts.wasmDir,
  };

  const started = await Promise.allSettled(Array.from({ length: workers }, () => startWorker(init, startTimeoutMs)));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.all(started.flatMap((s) => (s.status === 'fulfilled' ? [s.value.worker.terminate()] : [])));
    throw failed.reason instanceof Error ? failed.reason : new Error(String(failed.reason));
  }
  const ready = started.map((s) => (s as PromiseFulfilledResult<{ worker: Worker; ready: Ready }>).value);
  // startWorker already refused anything but wasm inside the worker; this double check
  // keeps the guarantee even if the worker protocol changes.
  for (const r of ready) {
    if (r.ready.backend !== 'wasm') {
      await Promise.all(ready.map((x) => x.worker.terminate()));
      throw new Error(`face detector: worker reports tf backend '${r.ready.backend}', not 'wasm'; refusing to start`);
    }
  }

  const slots: Slot[] = [];
  const queue: Job[] = [];
  let nextId = 1;
  let closed = false;

  const settle = (slot: Slot): Job | undefined => {
    const job = slot.job;
    slot.job = undefined;
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = undefined;
    return job;
  };

  const replace = (slot: Slot) => {
    const old = slot.worker;
    slot.worker = undefined;
    // Its listeners stay but go inert: they check slot.worker, which no longer is it.
    if (old) void old.terminate();
    if (closed) return;
    slot.starting = true;
    startWorker(init, startTimeoutMs).then(
      ({ worker }) => {
        slot.starting = false;
        if (closed) {
          void worker.terminate();
          return;
        }
        attach(slot, worker);
        pump();
      },
      () => {
        // A model that loaded once and now fails to load will not get better by
        // retrying in a loop; the slot stays dead and the others carry on.
        slot.starting = false;
        slot.dead = true;
        if (slots.every((s) => s.dead)) {
          for (const job of queue.splice(0)) job.reject(new ImageError(503, 'unavailable', 'face detector has no working worker'));
        }
      },
    );
  };

  const attach = (slot: Slot, worker: Worker) => {
    slot.worker = worker;
    worker.on('message', (msg: WorkerReply) => {
      if (slot.worker !== worker) return;
      if (msg.type !== 'result' && msg.type !== 'error') return;
      const job = slot.job;
      if (!job || job.id !== msg.id) return;
      settle(slot);
      if (msg.type === 'result') {
        job.resolve({ faces: msg.faces, width: msg.width, height: msg.height });
      } else if (msg.status === 422) {
        job.reject(new ImageError(422, msg.code, msg.message));
      } else {
        job.reject(new Error(`face detector: ${msg.message}`));
      }
      pump();
    });
    const crashed = (why: string) => {
      if (slot.worker !== worker) return;
      const job = settle(slot);
      job?.reject(new Error(`face detector: worker ${why}`));
      replace(slot);
    };
    worker.on('error', (err) => crashed(`failed: ${err.message}`));
    worker.on('exit', (code) => crashed(`exited with code ${code}`));
  };

  const dispatch = (slot: Slot, job: Job) => {
    const worker = slot.worker;
    if (!worker) throw new Error('face detector: dispatch to a slot without a worker');
    slot.job = job;
    slot.timer = setTimeout(() => {
      const timedOut = settle(slot);
      timedOut?.reject(new ImageError(504, 'upstream_timeout', `face detection took longer than ${timeoutMs} ms`));
      // wasm cannot be interrupted; the only way to get the thread back is a new one.
      replace(slot);
      pump();
    }, timeoutMs);
    // A private copy, transferred: the caller keeps its Buffer (possibly a pooled slice)
    // and the worker gets its own without a second copy on the way.
    const copy = new Uint8Array(job.image.byteLength);
    copy.set(job.image);
    const req: WorkerRequest = { id: job.id, image: copy };
    worker.postMessage(req, [copy.buffer]);
  };

  const freeSlot = () => slots.find((s) => s.worker && !s.job && !s.starting && !s.dead);

  function pump() {
    for (let guard = 0; guard < slots.length && queue.length > 0; guard++) {
      const slot = freeSlot();
      if (!slot) return;
      dispatch(slot, queue.shift()!);
    }
  }

  for (const r of ready) {
    const slot: Slot = { worker: undefined, job: undefined, timer: undefined, starting: false, dead: false };
    slots.push(slot);
    attach(slot, r.worker);
  }

  const detect: FaceDetector = (image) =>
    new Promise<Detection>((resolve, reject) => {
      if (closed) return reject(new ImageError(503, 'unavailable', 'face detector is closed'));
      if (slots.every((s) => s.dead)) return reject(new ImageError(503, 'unavailable', 'face detector has no working worker'));
      if (!Buffer.isBuffer(image) || image.byteLength === 0) {
        return reject(new ImageError(422, 'unprocessable_image', 'empty image'));
      }
      const job: Job = { id: nextId++, image, resolve, reject };
      const slot = queue.length === 0 ? freeSlot() : undefined;
      if (slot) return dispatch(slot, job);
      if (queue.length >= maxQueue) {
        return reject(new ImageError(503, 'overloaded', `face detector is busy: ${queue.length} images already waiting (max ${maxQueue})`));
      }
      queue.push(job);
    });

  const close = async () => {
    if (closed) return;
    closed = true;
    for (const job of queue.splice(0)) job.reject(new ImageError(503, 'unavailable', 'face detector is closed'));
    await Promise.all(
      slots.map(async (slot) => {
        settle(slot)?.reject(new ImageError(503, 'unavailable', 'face detector is closed'));
        const w = slot.worker;
        slot.worker = undefined;
        if (w) await w.terminate();
      }),
    );
  };

  return {
    detect,
    close,
    info: {
      backend: ready[0]!.ready.backend,
      loadMs: Math.max(...ready.map((r) => r.ready.loadMs)),
      workers,
      wasmFile: ready[0]!.ready.wasmFile,
    },
    load: () => ({ inFlight: slots.filter((s) => s.job).length, queued: queue.length }),
  };
}
