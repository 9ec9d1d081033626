// GET/HEAD /v1/results/<id>: a stored result, streamed, while it lives.
import { HttpError } from '../../../common/errors.js';
import type { PlainRoute } from '../context.js';
import { isResultId } from '../results-store.js';

export const results: PlainRoute = {
  endpoint: 'results',
  path: '/v1/results/',
  methods: 'GET, HEAD',
  admit: false,
  async handle(ctx, { req, res, path }) {
    const id = path.slice(this.path.length);
    const found = isResultId(id) ? await ctx.store.get(id) : undefined;
    if (found === undefined) throw new HttpError(404, 'not_found', 'no such result (unknown, or expired)');
    if (res.destroyed) { found.stream.destroy(); return; }
    res.setHeader('x-backend-load', ctx.pool.header());
    res.writeHead(200, {
      'content-type': found.contentType,
      'content-length': String(found.size),
      'x-content-type-options': 'nosniff',
      'cache-control': `private, max-age=${found.remainingSeconds}`,
      // Results are served from the API's origin: never let one act as a document.
      'content-security-policy': "default-src 'none'; sandbox",
    });
    if (req.method === 'HEAD') { found.stream.destroy(); res.end(); return; }
    found.stream.on('error', () => res.destroy());
    found.stream.pipe(res);
  },
};
