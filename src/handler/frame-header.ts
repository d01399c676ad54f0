/**
 * Client frame messages (protocol v1), pure code. A frame is one binary
 * WebSocket message: a 16-byte big-endian header, then the image bytes.
 *
 *   0  u8   version = 1
 *   1  u8   format: 1 = JPEG
 *   2  u16  reserved, 0
 *   4  u32  seq
 *   8  f64  captureTs, ms since the Unix epoch (client clock)
 *   16 ...  image bytes
 */
import type { ErrorCode } from './errors.js';

export const FRAME_HEADER_BYTES = 16;
export const FRAME_VERSION = 1;
export const FORMAT_JPEG = 1;

export interface FrameHeader {
  version: number;
  format: number;
  seq: number;
  captureTs: number;
}

export type ParsedFrame =
  | { ok: true; header: FrameHeader; image: Buffer }
  | { ok: false; code: ErrorCode; seq?: number; detail: string };

export function encodeFrame(header: Omit<FrameHeader, 'version'> & { version?: number }, image: Buffer): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + image.length);
  out.writeUInt8(header.version ?? FRAME_VERSION, 0);
  out.writeUInt8(header.format, 1);
  out.writeUInt16BE(0, 2);
  out.writeUInt32BE(header.seq >>> 0, 4);
  out.writeDoubleBE(header.captureTs, 8);
  image.copy(out, FRAME_HEADER_BYTES);
  return out;
}

/**
 * Parse and check a frame message. Never throws: every input maps to a
 * frame or to one error code. `maxBytes` bounds the whole message.
 */
export function parseFrame(data: Buffer, maxBytes: number): ParsedFrame {
  if (data.length < FRAME_HEADER_BYTES) {
    return { ok: false, code: 'frame_invalid', detail: `message of ${data.length} bytes is shorter than the 16-byte header` };
  }
  const seq = data.readUInt32BE(4);
  if (data.length > maxBytes) {
    return { ok: false, code: 'frame_too_large', seq, detail: `frame of ${data.length} bytes exceeds ${maxBytes}` };
  }
  const version = data.readUInt8(0);
  if (version !== FRAME_VERSION) {
    return { ok: false, code: 'unsupported_version', seq, detail: `header version ${version}` };
  }
  const format = data.readUInt8(1);
  if (format !== FORMAT_JPEG) {
    return { ok: false, code: 'unsupported_format', seq, detail: `format ${format}` };
  }
  if (data.readUInt16BE(2) !== 0) {
    return { ok: false, code: 'frame_invalid', seq, detail: 'reserved header bytes are not 0' };
  }
  const captureTs = data.readDoubleBE(8);
  if (!Number.isFinite(captureTs) || captureTs < 0) {
    return { ok: false, code: 'frame_invalid', seq, detail: 'captureTs is not a finite, non-negative number' };
  }
  const image = data.subarray(FRAME_HEADER_BYTES);
  if (image.length === 0) {
    return { ok: false, code: 'frame_invalid', seq, detail: 'the frame has no image bytes' };
  }
  return { ok: true, header: { version, format, seq, captureTs }, image };
}
