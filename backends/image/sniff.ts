// What the bytes really are. Content-Type and file names are attacker-controlled and
// never reach this module: magic numbers (file-type) propose a type, the decoder's
// header parse (sharp metadata) must agree, and only allow-listed types pass.
//
// Status rule: 415 unsupported_media_type when the bytes are not (only) an image type
// we accept — unknown magic, a type off the allow-list, SVG while disabled, polyglots;
// 422 unprocessable_image when they claim an accepted type but the decoder cannot read
// them (corrupt, truncated header, magic and decoder disagree).

import { fileTypeFromBuffer } from 'file-type';
import sharp, { type Metadata } from 'sharp';
import { ImageError, type ImageLimits, type InputFormat } from './types.js';

export interface Sniffed {
  readonly format: InputFormat;
  readonly mime: string;
  /** Header-level facts from the decoder; no pixels were decoded to get them. */
  readonly metadata: Metadata;
}

/** file-type extension → our input format (the allow-list). */
const ALLOWED: Readonly<Record<string, InputFormat>> = {
  jpg: 'jpeg',
  png: 'png',
  apng: 'png',
  webp: 'webp',
  avif: 'avif',
  gif: 'gif',
  tif: 'tiff',
  heic: 'heif',
};

const MIME: Readonly<Record<InputFormat, string>> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  avif: 'image/avif',
  gif: 'image/gif',
  tiff: 'image/tiff',
  heif: 'image/heic',
  svg: 'image/svg+xml',
};

/** Which sharp decoder must confirm each format. */
const DECODER: Readonly<Record<InputFormat, string>> = {
  jpeg: 'jpeg',
  png: 'png',
  webp: 'webp',
  avif: 'heif',
  gif: 'gif',
  tiff: 'tiff',
  heif: 'heif',
  svg: 'svg',
};

const AVIF_BRANDS = new Set(['avif', 'avis']);
const HEIC_BRANDS = new Set(['heic', 'heix', 'heim', 'heis', 'hevc', 'hevx', 'hevm', 'hevs']);

/**
 * The ISO-BMFF ftyp brands: major first, then compatible. HEIC and AVIF share the HEIF
 * container (and often `mif1`), so the codec brand is the only honest tell.
 */
export function ftypBrands(buf: Buffer): string[] {
  if (buf.length < 16 || buf.toString('latin1', 4, 8) !== 'ftyp') return [];
  const size = buf.readUInt32BE(0);
  const end = Math.min(size, buf.length, 4096);
  const brands = [buf.toString('latin1', 8, 12)];
  for (let off = 16; off + 4 <= end; off += 4) brands.push(buf.toString('latin1', off, off + 4));
  return brands;
}

export function heifKind(buf: Buffer): 'avif' | 'heif' | undefined {
  const brands = ftypBrands(buf);
  if (brands.length === 0) return undefined;
  if (AVIF_BRANDS.has(brands[0]!)) return 'avif';
  if (HEIC_BRANDS.has(brands[0]!)) return 'heif';
  // Major brand is generic (mif1/msf1/miaf): decide by the compatible brands.
  if (brands.some((b) => AVIF_BRANDS.has(b))) return 'avif';
  if (brands.some((b) => HEIC_BRANDS.has(b))) return 'heif';
  return undefined;
}

// Markers of active content. Found in an image they mean a polyglot crafted to be
// read as something else by a browser or a server-side tool; no camera writes them.
const ACTIVE_MARKERS = ['<script', '<html', '<!doctype html', '<?php', '<iframe', '<body', '<object', '<embed'];
/** Polyglots put their second payload at the ends: in a leading comment or appended. */
const SCAN_HEAD = 256 * 1024;
const SCAN_TAIL = 64 * 1024;

// Every marker starts with '<': find each '<' with indexOf (memchr) and compare what
// follows case-insensitively, instead of lower-casing a third of a megabyte per image.
const MARKER_BYTES = ACTIVE_MARKERS.map((m) => Buffer.from(m.slice(1), 'latin1'));

function hasActiveContent(buf: Buffer): boolean {
  return scanForMarkers(buf, 0, Math.min(buf.length, SCAN_HEAD))
    || (buf.length > SCAN_HEAD && scanForMarkers(buf, Math.max(SCAN_HEAD, buf.length - SCAN_TAIL), buf.length));
}

function scanForMarkers(buf: Buffer, from: number, to: number): boolean {
  for (let i = buf.indexOf(0x3c, from); i !== -1 && i < to; i = buf.indexOf(0x3c, i + 1)) {
    for (const m of MARKER_BYTES) if (matchesLowercase(buf, i + 1, m, to)) return true;
  }
  return false;
}

/** buf[at..] equals the lower-case ASCII `m`, ignoring the case of buf's letters. */
function matchesLowercase(buf: Buffer, at: number, m: Buffer, to: number): boolean {
  if (at + m.length > to) return false;
  for (let j = 0; j < m.length; j++) {
    const c = buf[at + j]!;
    if ((c >= 0x41 && c <= 0x5a ? c | 0x20 : c) !== m[j]) return false;
  }
  return true;
}

/** The end-of-central-directory signature, PK\x05\x06. */
const EOCD = Buffer.from([0x50, 0x4b, 0x05, 0x06]);

/**
 * A ZIP is read from its end: an end-of-central-directory record whose comment length
 * reaches exactly to the end of the buffer. Requiring that exact fit keeps random
 * compressed image bytes from ever looking like one.
 */
export function hasZipTrailer(buf: Buffer): boolean {
  if (buf.length < 22) return false;
  const min = Math.max(0, buf.length - (22 + 0xffff));
  // lastIndexOf searches in native code: the 64 KB tail of every upload, byte by byte in
  // JavaScript, was 0.1 ms of the main thread per image (load-tests/PROFILE.md).
  for (let i = buf.lastIndexOf(EOCD, buf.length - 22); i >= min; i = i === 0 ? -1 : buf.lastIndexOf(EOCD, i - 1)) {
    if (i + 22 + buf.readUInt16LE(i + 20) === buf.length) return true;
  }
  return false;
}


function looksLikeSvg(buf: Buffer): boolean {
  const head = buf.subarray(0, 4096).toString('utf8').replace(/^\uFEFF/, '').trimStart();
  if (!head.startsWith('<')) return false;
  // Skip the XML declaration, comments and a doctype before the root element.
  const stripped = head
    .replace(/^<\?xml[^>]*\?>\s*/i, '')
    .replace(/^(<!--[\s\S]*?-->\s*)+/, '')
    .replace(/^<!doctype[^>]*>\s*/i, '')
    .replace(/^(<!--[\s\S]*?-->\s*)+/, '');
  return /^<svg[\s>]/i.test(stripped);
}

function refuse(message: string): never {
  throw new ImageError(415, 'unsupported_media_type', message);
}

function unprocessable(message: string): never {
  throw new ImageError(422, 'unprocessable_image', message);
}

/**
 * Find the real type of `input`. Reads headers only: the pixel limit is passed to the
 * decoder so a header claiming a giant canvas is refused here, before any allocation.
 */
export async function sniff(input: Buffer, limits: ImageLimits): Promise<Sniffed> {
  if (input.length === 0) refuse('empty body');
  const ft = await fileTypeFromBuffer(input);
  let format: InputFormat;
  // file-type reports SVG with an XML declaration as plain XML.
  if (ft === undefined || ft.ext === 'xml' || ft.ext === 'svg') {
    if (!looksLikeSvg(input)) refuse('the bytes are not a recognised image type');
    if (!limits.allowSvg) refuse('SVG input is disabled');
    // librsvg would expand entities; a billion-laughs file needs no pixels to hurt.
    if (/<!entity/i.test(input.toString('latin1'))) refuse('SVG with entity declarations is refused');
    format = 'svg';
  } else {
    const allowed = ALLOWED[ft.ext];
    if (allowed === undefined) refuse(`${ft.mime} is not an accepted input type`);
    format = allowed;
    if (format === 'avif' || format === 'heif') {
      const kind = heifKind(input);
      if (kind === undefined) unprocessable('HEIF container without an AVIF or HEIC brand');
      format = kind;
    }
    if (hasZipTrailer(input)) refuse('the bytes are both an image and a ZIP archive');
  }
  if (hasActiveContent(input)) refuse('the bytes contain markup or script as well as an image');

  let metadata: Metadata;
  try {
    metadata = await sharp(input, {
      failOn: 'warning',
      limitInputPixels: limits.maxInputPixels,
      // Header parse only; SVG stays inside librsvg's own safety limits.
      unlimited: false,
    }).metadata();
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    if (/exceeds pixel limit/i.test(msg)) {
      throw new ImageError(413, 'payload_too_large', `image exceeds ${limits.maxInputPixels} pixels`);
    }
    unprocessable(`the ${format} decoder could not read the header`);
  }
  if (metadata.format !== DECODER[format]) {
    unprocessable(`magic number says ${format} but the decoder says ${String(metadata.format)}`);
  }
  if (format === 'heif' || format === 'avif') {
    const expected = format === 'avif' ? 'av1' : 'hevc';
    if (metadata.compression !== undefined && metadata.compression !== expected) {
      unprocessable(`brand says ${format} but the codec is ${metadata.compression}`);
    }
  }
  if (!(metadata.width > 0 && metadata.height > 0)) unprocessable('the image has no dimensions');
  return { format, mime: MIME[format], metadata };
}
