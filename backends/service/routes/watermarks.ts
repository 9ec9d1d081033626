// PUT /v1/watermarks/<id> stores a customer's watermark (201 with its size), DELETE
// removes it (204, or 404 when there was none).
import { HttpError } from '../../../common/errors.js';
import { customerOf, type AdmittedRoute } from '../context.js';
import { readBody } from '../http.js';
import { timed } from '../image-job.js';
import { fail, finish } from '../respond.js';

export const watermarks: AdmittedRoute = {
  endpoint: 'watermarks',
  path: '/v1/watermarks/',
  methods: 'PUT, DELETE',
  admit: true,
  async handle(ctx, ex, { slot }) {
    const { req, res } = ex;
    const id = ex.path.slice(this.path.length);
    const customer = customerOf(req);
    if (req.method === 'DELETE') {
      if (!(await ctx.watermarks.delete(customer, id))) throw new HttpError(404, 'not_found', `no watermark "${id}"`);
      finish(ctx, ex, 204, {}, '');
      return;
    }
    const input = await readBody(req, res, ctx.watermarks.limits.maxBytes, ctx.bodyRate);
    if (input.length === 0) throw new HttpError(400, 'bad_request', 'the body is empty; send the watermark image as the body', 'file');
    let stored;
    try {
      stored = await slot.run(() => timed(ctx, this.endpoint, () => ctx.watermarks.put(customer, id, input)), ctx.limits.timeoutMs);
    } catch (err) {
      fail(ctx, ex, err, 'process');
      return;
    }
    finish(ctx, ex, 201, { 'content-type': 'application/json', 'cache-control': 'no-store' }, JSON.stringify(stored));
  },
};
