// The perceptual score the image tests and bench:optimize share: SSIM (ssim.js) at the
// output size, both images flattened on white as a viewer on a white page sees them.
import sharp from 'sharp';
import { ssim } from 'ssim.js';

export interface Rgba { readonly data: Buffer; readonly width: number; readonly height: number }

export async function rgbaOnWhite(img: Buffer | string): Promise<Rgba> {
  const { data, info } = await sharp(img).flatten({ background: '#ffffff' }).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

export function ssimScore(ref: Rgba, out: Rgba): number {
  if (ref.width !== out.width || ref.height !== out.height) throw new Error(`size ${out.width}x${out.height} != ${ref.width}x${ref.height}`);
  const asImage = (r: Rgba) => ({ data: new Uint8ClampedArray(r.data.buffer, r.data.byteOffset, r.data.length), width: r.width, height: r.height });
  // At the output size: ssim.js would otherwise downsample to ~256 px first.
  return ssim(asImage(ref), asImage(out), { downsample: false }).mssim;
}
