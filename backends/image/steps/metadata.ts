// strip: false keeps the input's metadata. Default output already drops EXIF/XMP/IPTC and
// converts to sRGB; keeping metadata still converts to sRGB and tags it, so colours match
// either way.
import type { Step } from '../job.js';

export const metadata: Step = {
  apply: (pipe, job) => (job.opts.strip ? pipe : pipe.withMetadata()),
};
