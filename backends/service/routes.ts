// The image service's endpoints: one handler per file in routes/, one line here.
import type { Route } from './context.js';
import { detect } from './routes/detect.js';
import { healthz } from './routes/healthz.js';
import { imagesFetch } from './routes/images-fetch.js';
import { images } from './routes/images.js';
import { metrics } from './routes/metrics.js';
import { openapi } from './routes/openapi.js';
import { results } from './routes/results.js';
import { watermarks } from './routes/watermarks.js';

export const ROUTES: readonly Route[] = [images, imagesFetch, detect, results, watermarks, openapi, healthz, metrics];

const EXACT = new Map(ROUTES.filter((r) => !r.path.endsWith('/')).map((r) => [r.path, r]));
const PREFIXED = ROUTES.filter((r) => r.path.endsWith('/'));

/** The route for a path (exact paths first, then prefixes in the table's order), or undefined. */
export function routeFor(path: string): Route | undefined {
  return EXACT.get(path) ?? PREFIXED.find((r) => path.startsWith(r.path));
}
