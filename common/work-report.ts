// What an image backend did for one request, as it tells the gateway: the pixels it
// decoded, the encoders it ran, whether it searched formats (format: auto) and whether
// it ran face detection. The gateway prices that with the customer's plan and settles
// the difference from what it charged before the work (gateway/credits/settlement.ts),
// so prices live in one place, the edge, and a backend needs no plan.
//
// One response header, an RFC 9651 Dictionary (Structured Fields) the gateway removes
// before the client sees the response:
//   x-sluice-work: pixels=12000000, encodes=3, auto, detect
// (a bare key is the Boolean true). Unknown keys are ignored, so either side may grow.

export const WORK_HEADER = 'x-sluice-work';

export interface WorkReport {
  /** Pixels decoded (every frame of an animated input). */
  readonly pixels: number;
  /** Encoders run (format: auto runs one per candidate). */
  readonly encodes: number;
  /** A format search ran (format: auto on a still image). */
  readonly auto: boolean;
  /** Face detection ran (POST /v1/detect, or a face crop). */
  readonly detect: boolean;
}

export function formatWork(w: WorkReport): string {
  const parts = [`pixels=${Math.max(0, Math.round(w.pixels))}`, `encodes=${Math.max(0, Math.round(w.encodes))}`];
  if (w.auto) parts.push('auto');
  if (w.detect) parts.push('detect');
  return parts.join(', ');
}

const MAX_INTEGER = 999_999_999_999_999;

/** The report in a response header, or undefined when there is none or it does not parse. */
export function parseWork(v: string | string[] | undefined): WorkReport | undefined {
  if (typeof v !== 'string') return undefined;
  let pixels: number | undefined;
  let encodes = 0;
  let auto = false;
  let detect = false;
  for (const member of v.split(',')) {
    const m = /^\s*([a-z*][a-z0-9_.*-]*)(?:=(\?[01]|\d{1,15}))?\s*$/.exec(member);
    if (m === null) return undefined;
    const value = m[2] === undefined ? true : m[2].startsWith('?') ? m[2] === '?1' : Number(m[2]);
    if (m[1] === 'pixels' && typeof value === 'number') pixels = Math.min(value, MAX_INTEGER);
    else if (m[1] === 'encodes' && typeof value === 'number') encodes = value;
    else if (m[1] === 'auto') auto = value === true;
    else if (m[1] === 'detect') detect = value === true;
  }
  return pixels === undefined ? undefined : { pixels, encodes, auto, detect };
}
