import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { formatWork, parseWork } from '../../common/work-report.js';
import { operationOf } from './operation.js';
import { compilePricing, estimateUnits, workUnits } from './pricing.js';
import { refundStatuses } from './settlement.js';
import { ConfigError, parseConfig } from '../config/load.js';
import type { CostsConfig } from '../config/types.js';

// What a request costs: the one formula (base by route + format_auto + detection +
// per_megapixel x started megapixels, at most max_units), on what the edge sees before
// admission and on what the backend reports after.

function req(method: string, headers: Record<string, string>): IncomingMessage {
  return { method, headers } as unknown as IncomingMessage;
}

const PLAN: CostsConfig = { base: 1, routes: { detect: 3 }, format_auto: 4, detection: 6, per_megapixel: 2, bytes_per_megapixel: 100_000 };

describe('pricing', () => {
  it('no costs anywhere: no pricing (one unit a request, as before costs)', () => {
    assert.equal(compilePricing(undefined, undefined), undefined);
  });

  it('the estimate adds each feature X-Options asks for, and megapixels guessed from Content-Length', () => {
    const p = compilePricing(PLAN, undefined)!;
    const est = (path: string, headers: Record<string, string>, route = 'api'): number => estimateUnits(p, route, operationOf(req('POST', headers), path));
    assert.equal(est('/v1/images', {}), 1);
    assert.equal(est('/v1/images', { 'x-options': '{"format":"auto"}' }), 1 + 4);
    assert.equal(est('/v1/images', { 'x-options': '{"crop":{"mode":"face","aspect":"1:1"}}' }), 1 + 6);
    assert.equal(est('/v1/images', { 'x-options': '{"resize":{"width":10,"height":10,"gravity":"faces"},"format":"auto"}' }), 1 + 4 + 6);
    // 250 000 bytes at 100 000 bytes a megapixel: 3 started megapixels.
    assert.equal(est('/v1/images', { 'content-length': '250000' }), 1 + 2 * 3);
    // A chunked body declares no size: no megapixels until the backend reports them.
    assert.equal(est('/v1/images', { 'content-length': '250000', 'transfer-encoding': 'chunked' }), 1);
    // /v1/detect always runs detection; its route has its own base.
    assert.equal(est('/v1/detect', {}, 'detect'), 3 + 6);
    // Options the edge cannot read price as none.
    assert.equal(est('/v1/images', { 'x-options': '{not json' }), 1);
    assert.equal(est('/v1/images', { 'x-options': '"auto"' }), 1);
    // Only POSTs to the image API are image operations.
    assert.equal(estimateUnits(p, 'api', operationOf(req('GET', { 'x-options': '{"format":"auto"}' }), '/v1/images')), 1);
  });

  it('classifies operations for usage: image, fetch, detect, account, other', () => {
    assert.equal(operationOf(req('POST', {}), '/v1/images').cls, 'image');
    assert.equal(operationOf(req('POST', {}), '/v1/images/fetch').cls, 'fetch');
    assert.equal(operationOf(req('POST', {}), '/v1/detect').cls, 'detect');
    assert.equal(operationOf(req('GET', {}), '/v1/account/usage').cls, 'account');
    assert.equal(operationOf(req('GET', {}), '/v1/results/abc').cls, 'other');
  });

  it('the settled price comes from the work: decoded pixels, format search, detection', () => {
    const p = compilePricing(PLAN, undefined)!;
    assert.equal(workUnits(p, 'api', { pixels: 12_000_001, encodes: 3, auto: true, detect: false }), 1 + 4 + 2 * 13);
    assert.equal(workUnits(p, 'detect', { pixels: 640 * 480, encodes: 0, auto: false, detect: true }), 3 + 6 + 2);
  });

  it('max_units caps every price; its default prices the backend\'s 50 MP limit with every feature', () => {
    const p = compilePricing(PLAN, undefined)!;
    assert.equal(p.maxUnits, 3 + 4 + 6 + 2 * 50);
    assert.equal(workUnits(p, 'api', { pixels: 400_000_000, encodes: 3, auto: true, detect: true }), p.maxUnits);
    const capped = compilePricing({ ...PLAN, max_units: 20 }, undefined)!;
    assert.equal(estimateUnits(capped, 'api', operationOf(req('POST', { 'content-length': '9000000' }), '/v1/images')), 20);
  });

  it("a customer's costs replace the plan's field by field; routes merge by name", () => {
    const p = compilePricing(PLAN, { format_auto: 10, routes: { images: 2 } })!;
    assert.equal(p.formatAuto, 10);
    assert.equal(p.detection, 6);
    assert.deepEqual([...p.routes], [['detect', 3], ['images', 2]]);
    // A plan without costs gets the customer's (and defaults for the rest).
    const only = compilePricing(undefined, { base: 2 })!;
    assert.deepEqual([only.base, only.formatAuto, only.bytesPerMegapixel], [2, 0, 250_000]);
  });
});

describe('billing.refund_statuses', () => {
  const config = (statuses?: unknown[]): string => JSON.stringify({
    plans: { p: { rate: 1 } }, upstreams: { u: { targets: ['http://127.0.0.1:1'] } }, routes: [{ prefix: '/', upstream: 'u' }],
    ...(statuses === undefined ? {} : { billing: { refund_statuses: statuses } }),
  });

  it('is every 5xx by default; a list names statuses, 5xx all of them', () => {
    const dflt = parseConfig(config(), {});
    assert.deepEqual(dflt.billing.refund_statuses, ['5xx']);
    assert.equal(refundStatuses(dflt.billing.refund_statuses).size, 100);
    assert.deepEqual([...refundStatuses(parseConfig(config([502, 504]), {}).billing.refund_statuses)], [502, 504]);
    assert.deepEqual(refundStatuses([]).size, 0, 'an empty list refunds nothing');
  });

  it('never a 4xx: a client error is the request\'s own', () => {
    assert.throws(() => parseConfig(config([404]), {}), (e: unknown) => e instanceof ConfigError && e.errors.some((m) => m.startsWith('billing.refund_statuses[0]')));
    assert.throws(() => parseConfig(config(['4xx']), {}), ConfigError);
  });
});

describe('the work report header', () => {
  it('round-trips, and refuses what does not parse', () => {
    const w = { pixels: 12_000_000, encodes: 3, auto: true, detect: false };
    assert.equal(formatWork(w), 'pixels=12000000, encodes=3, auto');
    assert.deepEqual(parseWork(formatWork(w)), w);
    assert.deepEqual(parseWork('pixels=5, detect=?1, future=7'), { pixels: 5, encodes: 0, auto: false, detect: true });
    assert.equal(parseWork(undefined), undefined);
    assert.equal(parseWork('encodes=2'), undefined, 'no pixels: not a report');
    assert.equal(parseWork('pixels=-1'), undefined);
    assert.equal(parseWork('pixels=1; x'), undefined);
  });
});
