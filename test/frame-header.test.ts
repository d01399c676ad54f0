import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ERRORS } from '../src/handler/errors.js';
import { encodeFrame, FORMAT_JPEG, FRAME_HEADER_BYTES, FRAME_VERSION, parseFrame } from '../src/handler/frame-header.js';

const MAX = 1024;
const IMAGE = Buffer.from('ffd8ffd9', 'hex');

/** A header written byte by byte, independently of encodeFrame. */
function header(fields: { version?: number; format?: number; reserved?: number; seq?: number; captureTs?: number }): Buffer {
  const h = Buffer.alloc(FRAME_HEADER_BYTES);
  h.writeUInt8(fields.version ?? 1, 0);
  h.writeUInt8(fields.format ?? 1, 1);
  h.writeUInt16BE(fields.reserved ?? 0, 2);
  h.writeUInt32BE(fields.seq ?? 42, 4);
  h.writeDoubleBE(fields.captureTs ?? 1.7e12, 8);
  return h;
}
const frame = (fields: Parameters<typeof header>[0], image = IMAGE) => Buffer.concat([header(fields), image]);

describe('frame header', () => {
  it('is 16 bytes, version 1, JPEG = 1', () => {
    expect([FRAME_HEADER_BYTES, FRAME_VERSION, FORMAT_JPEG]).toEqual([16, 1, 1]);
  });

  it('encodes to the documented bytes', () => {
    const bytes = encodeFrame({ format: 1, seq: 0x01020304, captureTs: 1.5 }, IMAGE);
    expect(bytes.toString('hex')).toBe('01010000' + '01020304' + '3ff8000000000000' + 'ffd8ffd9');
  });

  it('round-trips through encodeFrame and parseFrame', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 0xffffffff }),
        fc.double({ min: 0, max: 1e15, noNaN: true }),
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        (seq, captureTs, image) => {
          const data = encodeFrame({ format: FORMAT_JPEG, seq, captureTs }, Buffer.from(image));
          const parsed = parseFrame(data, MAX);
          expect(parsed.ok).toBe(true);
          if (!parsed.ok) return;
          expect(parsed.header).toEqual({ version: 1, format: 1, seq, captureTs });
          expect(parsed.image.equals(Buffer.from(image))).toBe(true);
        },
      ),
    );
  });

  it('parses a hand-written frame', () => {
    const parsed = parseFrame(frame({ seq: 7, captureTs: 1234.5 }), MAX);
    expect(parsed).toMatchObject({ ok: true, header: { version: 1, format: 1, seq: 7, captureTs: 1234.5 } });
    expect(parsed.ok && parsed.image.equals(IMAGE)).toBe(true);
  });

  it('accepts a frame of exactly maxBytes and captureTs 0', () => {
    const data = frame({ captureTs: 0 }, Buffer.alloc(MAX - 16, 1));
    expect(parseFrame(data, MAX)).toMatchObject({ ok: true, header: { captureTs: 0 } });
  });
});

describe('frame header failures', () => {
  it('a message shorter than the header: frame_invalid without a seq', () => {
    for (const n of [0, 1, 15]) {
      const r = parseFrame(header({}).subarray(0, n), MAX);
      expect(r).toMatchObject({ ok: false, code: 'frame_invalid' });
      expect(r).not.toHaveProperty('seq');
    }
  });

  it('a frame above maxBytes: frame_too_large with its seq', () => {
    expect(parseFrame(frame({ seq: 9 }, Buffer.alloc(MAX - 15)), MAX)).toMatchObject({ ok: false, code: 'frame_too_large', seq: 9 });
  });

  it('another version: unsupported_version with its seq', () => {
    for (const version of [0, 2, 255]) {
      expect(parseFrame(frame({ version, seq: 3 }), MAX)).toMatchObject({ ok: false, code: 'unsupported_version', seq: 3 });
    }
  });

  it('another format: unsupported_format with its seq', () => {
    for (const format of [0, 2, 255]) {
      expect(parseFrame(frame({ format, seq: 4 }), MAX)).toMatchObject({ ok: false, code: 'unsupported_format', seq: 4 });
    }
  });

  it('non-zero reserved bytes: frame_invalid with its seq', () => {
    for (const reserved of [1, 0x100, 0xffff]) {
      expect(parseFrame(frame({ reserved, seq: 5 }), MAX)).toMatchObject({ ok: false, code: 'frame_invalid', seq: 5 });
    }
  });

  it('a non-finite or negative captureTs: frame_invalid with its seq', () => {
    for (const captureTs of [NaN, Infinity, -Infinity, -1, -1e-300]) {
      expect(parseFrame(frame({ captureTs, seq: 6 }), MAX), String(captureTs)).toMatchObject({
        ok: false,
        code: 'frame_invalid',
        seq: 6,
        detail: 'captureTs is not a finite, non-negative number',
      });
    }
  });

  it('no image bytes: frame_invalid with its seq', () => {
    expect(parseFrame(header({ seq: 8 }), MAX)).toMatchObject({ ok: false, code: 'frame_invalid', seq: 8, detail: 'the frame has no image bytes' });
  });

  it('checks size before version: a large frame of another version is frame_too_large', () => {
    expect(parseFrame(frame({ version: 2, seq: 1 }, Buffer.alloc(MAX)), MAX)).toMatchObject({ code: 'frame_too_large', seq: 1 });
  });

  it('random bytes never throw and map to one outcome with a registered code', () => {
    const codes = Object.keys(ERRORS);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 64 }),
          // A valid version and format byte make the later checks reachable.
          fc.uint8Array({ minLength: 14, maxLength: 64 }).map((b) => Uint8Array.from([1, 1, ...b])),
          fc.uint8Array({ minLength: 12, maxLength: 64 }).map((b) => Uint8Array.from([1, 1, 0, 0, ...b])),
        ),
        fc.integer({ min: 0, max: 80 }),
        (bytes, maxBytes) => {
          const data = Buffer.from(bytes);
          const r = parseFrame(data, maxBytes);
          if (r.ok) {
            expect(data.length).toBeGreaterThan(16);
            expect(data.length).toBeLessThanOrEqual(maxBytes);
            expect(r.header.seq).toBe(data.readUInt32BE(4));
            expect(Number.isFinite(r.header.captureTs) && r.header.captureTs >= 0).toBe(true);
            expect(r.image.length).toBe(data.length - 16);
          } else {
            expect(codes).toContain(r.code);
            expect(['frame_invalid', 'frame_too_large', 'unsupported_version', 'unsupported_format']).toContain(r.code);
            // Every failure past the length check names the frame's seq.
            if (data.length >= 16) expect(r.seq).toBe(data.readUInt32BE(4));
            else expect(r.seq).toBeUndefined();
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
