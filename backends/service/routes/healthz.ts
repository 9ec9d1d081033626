// GET/HEAD /healthz: alive, and how loaded.
import type { PlainRoute } from '../context.js';
import { finish } from '../respond.js';

export const healthz: PlainRoute = {
  endpoint: 'healthz',
  path: '/healthz',
  methods: 'GET, HEAD',
  admit: false,
  handle(ctx, ex) {
    finish(ctx, ex, 200, { 'content-type': 'application/json', 'cache-control': 'no-store' }, JSON.stringify({ status: 'ok', load: ctx.pool.load }));
  },
};
