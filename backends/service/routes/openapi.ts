// GET/HEAD /openapi.json: the image API's OpenAPI document (openapi.json, generated).
import type { PlainRoute } from '../context.js';
import { finish } from '../respond.js';

export const openapi: PlainRoute = {
  endpoint: 'openapi',
  path: '/openapi.json',
  methods: 'GET, HEAD',
  admit: false,
  handle(ctx, ex) {
    finish(ctx, ex, 200, { 'content-type': 'application/json' }, ctx.openapi);
  },
};
