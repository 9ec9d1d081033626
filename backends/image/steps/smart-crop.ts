// A crop by strategy: crop.mode (center/attention/entropy/face, or crop.gravity) to
// crop.aspect or to the resize's width and height, and resize.gravity face/faces (a
// face crop to the resize's size). The crop is a cover resize at the chosen position;
// a face crop first cuts the region around the faces.
import sharp from 'sharp';
import { faceCropRegion } from '../face-crop.js';
import { position, type Rect, type Size } from '../geometry.js';
import { badField, type Step } from '../job.js';
import { ImageError, type Compass, type Face, type FaceDetector, type Gravity } from '../types.js';
import { toPipelineFrame, turnsQuarter } from './orient.js';

/** The largest box of aspect `a` (w/h) inside w × h, centred sizes only. */
function aspectBox(w: number, h: number, a: number): Size {
  if (w / h > a) return { width: Math.max(1, Math.min(w, Math.round(h * a))), height: h };
  return { width: w, height: Math.max(1, Math.min(h, Math.round(w / a))) };
}

export const smartCrop: Step = {
  async check(job) {
    const { crop, resize: rs } = job.opts;
    // face/faces gravity on a resize is a face crop to the resize's width and height.
    const resizeFaces = rs?.gravity === 'face' || rs?.gravity === 'faces';
    const mode = crop?.mode ?? (resizeFaces ? 'face' : undefined);
    if (mode === undefined) return;
    const gravity: Gravity | undefined = crop?.gravity ?? rs?.gravity;
    const scale = job.opts.scale === undefined ? undefined : job.opts.scale / 100;
    // Target output size, in the output frame.
    let tw: number;
    let th: number;
    if (rs && rs.width !== undefined && rs.height !== undefined) {
      if (crop?.aspect !== undefined) badField('crop.aspect', 'conflicts with resize width and height');
      if (rs.fit !== 'cover') badField('resize.fit', 'crop modes need fit cover');
      tw = rs.width;
      th = rs.height;
    } else if (crop?.aspect !== undefined) {
      const box = aspectBox(job.size.width, job.size.height, crop.aspect);
      tw = rs?.width ?? (rs?.height !== undefined ? Math.max(1, Math.round(rs.height * crop.aspect)) : box.width);
      th = rs?.height ?? (rs?.width !== undefined ? Math.max(1, Math.round(rs.width / crop.aspect)) : box.height);
    } else {
      badField('crop.aspect', 'a crop mode needs crop.aspect or resize width and height');
    }
    let region: Rect | undefined;
    const detect = job.env.detectFaces;
    if (mode === 'face' && detect) {
      job.facesDetected = true;
      const quarter = turnsQuarter(job);
      region = await faceRegion(job.input, detect, job.oriented, quarter ? th : tw, quarter ? tw : th, gravity === 'face');
      if (region) {
        job.extract = toPipelineFrame(job, region);
        job.size = { width: job.extract.width, height: job.extract.height };
      }
    }
    // Never enlarge: shrink the target (keeping its aspect) to the full-resolution crop.
    const full = aspectBox(job.size.width, job.size.height, tw / th);
    if (!rs?.upscale && (tw > full.width || th > full.height)) {
      tw = full.width;
      th = full.height;
    }
    // scale is a percentage of the crop, so it may enlarge: that is what > 100 asks for.
    if (scale !== undefined) {
      tw = Math.max(1, Math.round(tw * scale));
      th = Math.max(1, Math.round(th * scale));
    }
    // mode face without gravity keeps its documented fallback (attention); face/faces gravity falls back to centre.
    const placement =
      region !== undefined ? 'centre'
        : mode === 'entropy' ? sharp.strategy.entropy
          : mode === 'attention' || (mode === 'face' && gravity === undefined) ? sharp.strategy.attention
            : position(gravity === 'face' || gravity === 'faces' ? undefined : (gravity as Compass | undefined));
    job.resize = { width: tw, height: th, fit: 'cover', position: placement };
  },
};

/**
 * The region of the oriented frame around the faces for a tw × th crop.
 * `prominent`: keep only the face with the largest area × score (gravity face) instead of all (faces).
 */
async function faceRegion(input: Buffer, detect: FaceDetector, frame: Size, tw: number, th: number, prominent: boolean): Promise<Rect | undefined> {
  const { width: W, height: H } = frame;
  let detection;
  try {
    detection = await detect(input);
  } catch (err) {
    if (err instanceof ImageError) throw err;
    throw new ImageError(503, 'unavailable', 'face detection failed');
  }
  // The detector may have looked at a scaled copy; bring boxes into our frame.
  const sx = detection.width > 0 ? W / detection.width : 1;
  const sy = detection.height > 0 ? H / detection.height : 1;
  const faces: Face[] = detection.faces.map((f) => ({
    score: f.score,
    box: { x: f.box.x * sx, y: f.box.y * sy, width: f.box.width * sx, height: f.box.height * sy },
  }));
  const weight = (f: Face): number => f.box.width * f.box.height * f.score;
  const chosen = prominent && faces.length > 1 ? [faces.reduce((a, b) => (weight(b) > weight(a) ? b : a))] : faces;
  const r = faceCropRegion(chosen, W, H, tw, th);
  if (!r) return undefined;
  // Someone else's arithmetic decides an extract: clamp so a slip cannot become a 422.
  const left = Math.max(0, Math.min(W - 1, Math.round(r.left)));
  const top = Math.max(0, Math.min(H - 1, Math.round(r.top)));
  const width = Math.max(1, Math.min(W - left, Math.round(r.width)));
  const height = Math.max(1, Math.min(H - top, Math.round(r.height)));
  return { left, top, width, height };
}
