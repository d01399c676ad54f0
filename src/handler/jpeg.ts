/**
 * A cheap structural check of a JPEG, pure code, run before a frame is
 * queued: SOI first, well-formed marker segments up to a start-of-frame
 * whose width and height are within limits, and EOI at the end. It reads
 * headers only (no entropy-coded data), so a decompression bomb (a tiny
 * file that claims 60000×60000 pixels) is refused before any decoder sees it.
 */
import type { ErrorCode } from './errors.js';

export interface ImageLimits {
  maxWidth: number;
  maxHeight: number;
}

export type JpegCheck =
  | { ok: true; width: number; height: number }
  | { ok: false; code: ErrorCode; detail: string };

const SOI = 0xd8;
const EOI = 0xd9;
const SOS = 0xda;

/** Start-of-frame markers: C0–CF except DHT (C4), JPG (C8) and DAC (CC). */
const isSof = (m: number) => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
/** Markers without a length field. */
const isStandalone = (m: number) => m === 0x01 || (m >= 0xd0 && m <= 0xd7);

export function inspectJpeg(data: Buffer, limits: ImageLimits): JpegCheck {
  if (data.length < 4 || data[0] !== 0xff || data[1] !== SOI) {
    return { ok: false, code: 'jpeg_invalid', detail: 'no JPEG SOI marker at the start' };
  }
  let pos = 2;
  let size: { width: number; height: number } | null = null;
  while (pos < data.length) {
    if (data[pos] !== 0xff) return { ok: false, code: 'jpeg_invalid', detail: `expected a marker at byte ${pos}` };
    // Any number of 0xFF fill bytes may precede a marker.
    while (pos < data.length && data[pos] === 0xff) pos++;
    if (pos >= data.length) break;
    const marker = data[pos++];
    if (marker === EOI) return { ok: false, code: 'jpeg_invalid', detail: 'EOI before any image data' };
    if (isStandalone(marker)) continue;
    if (pos + 2 > data.length) break;
    const length = data.readUInt16BE(pos);
    if (length < 2) return { ok: false, code: 'jpeg_invalid', detail: `segment length ${length} at byte ${pos}` };
    if (pos + length > data.length) break;
    if (isSof(marker)) {
      // The decoder takes the first; a second could make the two disagree about the size.
      if (size) return { ok: false, code: 'jpeg_invalid', detail: 'more than one start-of-frame segment' };
      if (length < 8) return { ok: false, code: 'jpeg_invalid', detail: 'start-of-frame segment too short' };
      const height = data.readUInt16BE(pos + 3);
      const width = data.readUInt16BE(pos + 5);
      if (width === 0 || height === 0) return { ok: false, code: 'jpeg_invalid', detail: `image is ${width}×${height}` };
      if (width > limits.maxWidth || height > limits.maxHeight) {
        return {
          ok: false,
          code: 'image_too_large',
          detail: `image is ${width}×${height}, above ${limits.maxWidth}×${limits.maxHeight}`,
        };
      }
      size = { width, height };
    }
    if (marker === SOS) {
      if (!size) return { ok: false, code: 'jpeg_invalid', detail: 'scan data before a start-of-frame segment' };
      // Entropy-coded data follows; only the end marker is checked, not decoded.
      if (data[data.length - 2] !== 0xff || data[data.length - 1] !== EOI) {
        return { ok: false, code: 'jpeg_truncated', detail: 'no EOI marker at the end' };
      }
      return { ok: true, ...size };
    }
    pos += length;
  }
  return { ok: false, code: 'jpeg_truncated', detail: 'the image ends inside its headers' };
}
