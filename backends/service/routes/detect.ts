// POST /v1/detect: the faces in the image, with boxes and scores.
import { HttpError } from '../../../common/errors.js';
import { formatWork, WORK_HEADER } from '../../../common/work-report.js';
import type { Detection } from '../../image/types.js';
import type { AdmittedRoute } from '../context.js';
import { timed } from '../image-job.js';
import { readImageRequest } from '../image-request.js';
import { fail, finish } from '../respond.js';

export const detect: AdmittedRoute = {
  endpoint: 'detect',
  path: '/v1/detect',
  methods: 'POST',
  admit: true,
  async handle(ctx, ex, { slot }) {
    const detectFaces = ctx.deps.detect;
    if (detectFaces === undefined) throw new HttpError(503, 'unavailable', 'face detection is not enabled on this backend');
    const { input } = await readImageRequest(ctx, ex);
    let detection: Detection;
    try {
      detection = await slot.run(() => timed(ctx, this.endpoint, () => detectFaces(input)), ctx.limits.timeoutMs);
    } catch (err) {
      fail(ctx, ex, err, 'process');
      return;
    }
    const body = {
      faces: detection.faces.map((f) => ({ box: { x: f.box.x, y: f.box.y, width: f.box.width, height: f.box.height }, score: f.score })),
      width: detection.width,
      height: detection.height,
    };
    ex.res.setHeader(WORK_HEADER, formatWork({ pixels: detection.width * detection.height, encodes: 0, auto: false, detect: true }));
    finish(ctx, ex, 200, { 'content-type': 'application/json', 'cache-control': 'no-store' }, JSON.stringify(body));
  },
};
