// POST /v1/images/fetch: {url, options}; the image downloaded under the SSRF guard.
import type { AdmittedRoute } from '../context.js';
import { processAndAnswer } from '../image-job.js';
import { readFetchRequest } from '../image-request.js';

export const imagesFetch: AdmittedRoute = {
  endpoint: 'images_fetch',
  path: '/v1/images/fetch',
  methods: 'POST',
  admit: true,
  async handle(ctx, ex, ticket) {
    const arrived = performance.now();
    await processAndAnswer(ctx, ex, ticket, this.endpoint, await readFetchRequest(ctx, ex), arrived);
  },
};
