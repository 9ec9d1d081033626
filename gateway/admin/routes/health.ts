import type { AdminRoute } from '../../../common/admin/router.js';
import type { AdminDeps } from '../admin-deps.js';

// The admin port's open endpoints: probes, metrics and the API's own document.

export const healthz: AdminRoute<AdminDeps> = {
  method: 'GET', path: '/healthz', open: true,
  doc: { operationId: 'healthz', summary: 'The process is up.', responses: { 200: { description: 'Up.', schema: 'Status' } } },
  // The pid lets a load tester on the same host read the gateway's CPU from /proc.
  handle: () => ({ status: 200, body: { status: 'ok', pid: process.pid } }),
};

export const readyz: AdminRoute<AdminDeps> = {
  method: 'GET', path: '/readyz', open: true,
  doc: {
    operationId: 'readyz', summary: 'The store answers (Redis, when configured).',
    responses: { 200: { description: 'Ready.', schema: 'Readiness' }, 503: { description: 'The store did not answer in time.', schema: 'Readiness' } },
  },
  async handle(_call, d) {
    try {
      await d.storeReady();
      return { status: 200, body: { status: 'ready', store: d.cfg.store.kind } };
    } catch (err) {
      return { status: 503, body: { status: 'not_ready', store: d.cfg.store.kind, error: (err as Error).message } };
    }
  },
};

export const metrics: AdminRoute<AdminDeps> = {
  method: 'GET', path: '/metrics', open: true,
  doc: {
    operationId: 'metrics', summary: "Prometheus metrics (every worker's, aggregated).",
    responses: { 200: { description: 'Prometheus text format.', content: { 'text/plain': { schema: { type: 'string' } } } } },
  },
  async handle(_call, d) {
    return { status: 200, raw: { contentType: d.metrics.registry.contentType, data: await d.metrics.registry.metrics() } };
  },
};
