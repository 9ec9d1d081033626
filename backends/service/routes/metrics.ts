// GET /metrics: Prometheus text.
import type { PlainRoute } from '../context.js';
import { finish } from '../respond.js';

export const metrics: PlainRoute = {
  endpoint: 'metrics',
  path: '/metrics',
  methods: 'GET',
  admit: false,
  async handle(ctx, ex) {
    const text = await ctx.metrics.registry.metrics();
    finish(ctx, ex, 200, { 'content-type': ctx.metrics.registry.contentType }, text);
  },
};
