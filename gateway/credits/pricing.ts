import type { CostOverridesConfig, CostsConfig } from '../config/types.js';
import type { WorkReport } from '../../common/work-report.js';
import type { Operation } from './operation.js';

/**
 * A plan's costs with a customer's overrides applied, compiled once per identity. Every
 * price is one formula: base (by route) + format_auto + detection + per_megapixel x
 * started megapixels. Before admission it runs on what the edge sees (X-Options, and
 * megapixels estimated from Content-Length); after the response, on what the backend
 * reports it did. Never more than maxUnits.
 */
export interface Pricing {
  readonly base: number;
  readonly routes: ReadonlyMap<string, number>;
  readonly formatAuto: number;
  readonly detection: number;
  readonly perMegapixel: number;
  readonly bytesPerMegapixel: number;
  readonly maxUnits: number;
}

/** The megapixel count that prices the backend's default pixel limit (`--max-input-pixels`, 50 MP) into max_units' default. */
export const DEFAULT_MAX_MEGAPIXELS = 50;
const MEGAPIXEL = 1_000_000;

/** undefined when neither the plan nor the customer sets costs: one unit per request, as before costs. */
export function compilePricing(plan: CostsConfig | undefined, over: CostOverridesConfig | undefined): Pricing | undefined {
  if (plan === undefined && over === undefined) return undefined;
  const routes = new Map(Object.entries({ ...plan?.routes, ...over?.routes }));
  const base = over?.base ?? plan?.base ?? 1;
  const formatAuto = over?.format_auto ?? plan?.format_auto ?? 0;
  const detection = over?.detection ?? plan?.detection ?? 0;
  const perMegapixel = over?.per_megapixel ?? plan?.per_megapixel ?? 0;
  const largestBase = Math.max(base, ...routes.values());
  return Object.freeze({
    base,
    routes,
    formatAuto,
    detection,
    perMegapixel,
    bytesPerMegapixel: over?.bytes_per_megapixel ?? plan?.bytes_per_megapixel ?? 250_000,
    maxUnits: Math.max(1, over?.max_units ?? plan?.max_units ?? largestBase + formatAuto + detection + perMegapixel * DEFAULT_MAX_MEGAPIXELS),
  });
}

function price(p: Pricing, route: string, auto: boolean, face: boolean, megapixels: number): number {
  const units = (p.routes.get(route) ?? p.base) + (auto ? p.formatAuto : 0) + (face ? p.detection : 0) + p.perMegapixel * megapixels;
  return Math.min(p.maxUnits, units);
}

/** What the edge charges before the work: the request's features, megapixels guessed from its declared size. */
export function estimateUnits(p: Pricing, route: string, op: Operation): number {
  const megapixels = op.inputBytes > 0 ? Math.ceil(op.inputBytes / p.bytesPerMegapixel) : 0;
  return price(p, route, op.auto, op.face, megapixels);
}

/** What the work really cost, from the backend's report. */
export function workUnits(p: Pricing, route: string, w: WorkReport): number {
  return price(p, route, w.auto, w.detect, Math.ceil(w.pixels / MEGAPIXEL));
}
