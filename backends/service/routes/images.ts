// POST /v1/images: the image as the body or multipart field `file`.
import type { AdmittedRoute } from '../context.js';
import { processAndAnswer } from '../image-job.js';
import { readImageRequest } from '../image-request.js';

export const images: AdmittedRoute = {
  endpoint: 'images',
  path: '/v1/images',
  methods: 'POST',
  admit: true,
  async handle(ctx, ex, ticket) {
    const arrived = performance.now();
    await processAndAnswer(ctx, ex, ticket, this.endpoint, await readImageRequest(ctx, ex), arrived);
  },
};
