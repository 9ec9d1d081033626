import type { IncomingMessage } from 'node:http';

// What the edge can see of a request before it is admitted: which operation it is (by
// method and path), which costly features its X-Options ask for, and how many bytes its
// body declares. Prices (pricing.ts) and daily usage (usage-meter.ts) are made from it.

/** One per request; a billing system counts requests per class. */
export type OperationClass = 'image' | 'fetch' | 'detect' | 'account' | 'other';

export const OPERATION_CLASSES: readonly OperationClass[] = ['image', 'fetch', 'detect', 'account', 'other'];

export interface Operation {
  readonly cls: OperationClass;
  /** X-Options asks for format: auto (a search over encoders). */
  readonly auto: boolean;
  /** Face detection runs: POST /v1/detect, or a face crop (crop mode face, gravity face or faces). */
  readonly face: boolean;
  /** The declared body size (Content-Length), 0 when unknown (chunked) or none. */
  readonly inputBytes: number;
}

/** The image API's operations, by the public path a client posts to (DESIGN.md, "Image API"). */
const POST_CLASS: ReadonlyMap<string, OperationClass> = new Map([
  ['/v1/images', 'image'],
  ['/v1/images/fetch', 'fetch'],
  ['/v1/detect', 'detect'],
]);

const FACE = new Set(['face', 'faces']);
const PLAIN: Operation = Object.freeze({ cls: 'other', auto: false, face: false, inputBytes: 0 });
const ACCOUNT: Operation = Object.freeze({ cls: 'account', auto: false, face: false, inputBytes: 0 });

export function operationOf(req: IncomingMessage, path: string): Operation {
  const cls = req.method === 'POST' ? POST_CLASS.get(path) : undefined;
  if (cls === undefined) return path === '/v1/account' || path.startsWith('/v1/account/') ? ACCOUNT : PLAIN;
  const declared = req.headers['content-length'];
  const inputBytes = declared === undefined || req.headers['transfer-encoding'] !== undefined ? 0 : Number(declared) || 0;
  if (cls === 'detect') return { cls, auto: false, face: true, inputBytes };
  const features = optionFeatures(req.headers['x-options']);
  return { cls, auto: features.auto, face: features.face, inputBytes };
}

/**
 * The features X-Options asks for. Options the edge cannot see (a multipart field, a
 * fetch request's JSON body) or cannot parse price as none: the backend reports what it
 * really ran, and the difference is settled after the response.
 */
function optionFeatures(header: string | string[] | undefined): { auto: boolean; face: boolean } {
  if (typeof header !== 'string' || header === '') return { auto: false, face: false };
  let o: { format?: unknown; crop?: { mode?: unknown; gravity?: unknown }; resize?: { gravity?: unknown } };
  try {
    o = JSON.parse(header) as typeof o;
  } catch {
    return { auto: false, face: false };
  }
  if (typeof o !== 'object' || o === null) return { auto: false, face: false };
  const face = o.crop?.mode === 'face' || FACE.has(o.crop?.gravity as string) || FACE.has(o.resize?.gravity as string);
  return { auto: o.format === 'auto', face };
}
