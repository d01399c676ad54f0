import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { inspectJpeg } from '../src/handler/jpeg.js';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
const read = (...p: string[]) => fs.readFileSync(path.join(FIXTURES, ...p));
/** The server's default limits (MAX_IMAGE_WIDTH, MAX_IMAGE_HEIGHT). */
const LIMITS = { maxWidth: 1920, maxHeight: 1920 };

/** Every fixture with its size as OpenCV decodes it. */
const SIZES: Record<string, [number, number]> = {
  'astronaut.jpg': [512, 512],
  'brick.jpg': [512, 512],
  'camera.jpg': [512, 512],
  'chelsea.jpg': [451, 300],
  'coffee.jpg': [600, 400],
  ...Object.fromEntries(
    ['black', 'empty', 'empty-1', 'empty-2', 'empty-3', 'empty-4', 'face', 'face-1', 'face-2', 'face-3', 'face-4', 'wall'].map(
      (n) => [`frames/${n}.jpg`, [640, 480] as [number, number]],
    ),
  ),
};

const face = read('frames', 'face.jpg');

/** Offset of the first marker byte (0xFF) of the first segment with this marker. */
function segmentAt(data: Buffer, marker: number): number {
  let pos = 2;
  while (pos < data.length) {
    if (data[pos + 1] === marker) return pos;
    pos += 2 + data.readUInt16BE(pos + 2);
  }
  throw new Error(`no marker ${marker.toString(16)}`);
}
const SOF0 = 0xc0;
const SOS = 0xda;

const CODES = ['jpeg_invalid', 'jpeg_truncated', 'image_too_large'];

describe('inspectJpeg on real JPEGs', () => {
  it('the fixture set is what the table lists', () => {
    const files = [
      ...fs.readdirSync(FIXTURES).filter((f) => f.endsWith('.jpg')),
      ...fs.readdirSync(path.join(FIXTURES, 'frames')).filter((f) => f.endsWith('.jpg')).map((f) => `frames/${f}`),
    ];
    expect(files.sort()).toEqual(Object.keys(SIZES).sort());
  });

  for (const [name, [width, height]] of Object.entries(SIZES)) {
    it(`${name} is a ${width}×${height} JPEG`, () => {
      expect(inspectJpeg(read(name), LIMITS)).toEqual({ ok: true, width, height });
    });
  }

  it('refuses an image above the limit in either dimension', () => {
    expect(inspectJpeg(face, { maxWidth: 639, maxHeight: 480 })).toMatchObject({ ok: false, code: 'image_too_large' });
    expect(inspectJpeg(face, { maxWidth: 640, maxHeight: 479 })).toMatchObject({ ok: false, code: 'image_too_large' });
    expect(inspectJpeg(face, { maxWidth: 640, maxHeight: 480 })).toEqual({ ok: true, width: 640, height: 480 });
  });
});

describe('inspectJpeg on broken JPEGs', () => {
  it('refuses a decompression bomb (SOF patched to 60000×60000) from its header alone', () => {
    const bomb = Buffer.from(face);
    const sof = segmentAt(bomb, SOF0);
    bomb.writeUInt16BE(60000, sof + 5); // height
    bomb.writeUInt16BE(60000, sof + 7); // width
    // Only the header matters: cutting the scan data away gives the same answer.
    const result = inspectJpeg(bomb, LIMITS);
    expect(result).toEqual({ ok: false, code: 'image_too_large', detail: 'image is 60000×60000, above 1920×1920' });
    expect(inspectJpeg(bomb.subarray(0, segmentAt(bomb, SOS)), LIMITS)).toEqual(result);
  });

  it('refuses a 0-pixel image as invalid', () => {
    const zero = Buffer.from(face);
    zero.writeUInt16BE(0, segmentAt(zero, SOF0) + 7);
    expect(inspectJpeg(zero, LIMITS)).toMatchObject({ ok: false, code: 'jpeg_invalid' });
  });

  it('refuses PNG bytes as invalid', () => {
    const png = Buffer.from(
      '89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cfc0f01f0005000201a5b8a3a50000000049454e44ae426082',
      'hex',
    );
    expect(inspectJpeg(png, LIMITS)).toMatchObject({ ok: false, code: 'jpeg_invalid' });
  });

  it('refuses zero-length and 3-byte images as invalid', () => {
    expect(inspectJpeg(Buffer.alloc(0), LIMITS)).toMatchObject({ ok: false, code: 'jpeg_invalid' });
    expect(inspectJpeg(Buffer.from([0xff, 0xd8, 0xff]), LIMITS)).toMatchObject({ ok: false, code: 'jpeg_invalid' });
  });

  it('calls a JPEG cut in its scan data truncated', () => {
    const sos = segmentAt(face, SOS);
    for (const end of [sos + 20, sos + 1000, face.length - 1000, face.length - 1]) {
      expect(inspectJpeg(face.subarray(0, end), LIMITS), String(end)).toEqual({
        ok: false,
        code: 'jpeg_truncated',
        detail: 'no EOI marker at the end',
      });
    }
  });

  it('calls a JPEG cut inside its headers truncated', () => {
    const sof = segmentAt(face, SOF0);
    const sos = segmentAt(face, SOS);
    for (const end of [4, 5, 21, sof, sof + 1, sof + 3, sof + 8, sos, sos + 3]) {
      expect(inspectJpeg(face.subarray(0, end), LIMITS), String(end)).toEqual({
        ok: false,
        code: 'jpeg_truncated',
        detail: 'the image ends inside its headers',
      });
    }
  });

  it('refuses an EOI before any scan, and scan data before a start-of-frame', () => {
    expect(inspectJpeg(Buffer.from('ffd8ffd9', 'hex'), LIMITS)).toMatchObject({ ok: false, code: 'jpeg_invalid' });
    const sos = segmentAt(face, SOS);
    const noSof = Buffer.concat([face.subarray(0, 2), face.subarray(sos)]);
    expect(inspectJpeg(noSof, LIMITS)).toEqual({ ok: false, code: 'jpeg_invalid', detail: 'scan data before a start-of-frame segment' });
  });

  it('refuses a second start-of-frame segment, which could make the decoder see another size', () => {
    const sof = segmentAt(face, SOF0);
    const segment = Buffer.from(face.subarray(sof, sof + 2 + face.readUInt16BE(sof + 2)));
    segment.writeUInt16BE(16, 5);
    segment.writeUInt16BE(16, 7);
    const twice = Buffer.concat([face.subarray(0, sof), segment, face.subarray(sof)]);
    expect(inspectJpeg(twice, LIMITS)).toEqual({ ok: false, code: 'jpeg_invalid', detail: 'more than one start-of-frame segment' });
  });

  it('accepts fill bytes before a marker', () => {
    const sof = segmentAt(face, SOF0);
    const padded = Buffer.concat([face.subarray(0, sof), Buffer.from([0xff, 0xff, 0xff]), face.subarray(sof)]);
    expect(inspectJpeg(padded, LIMITS)).toEqual({ ok: true, width: 640, height: 480 });
  });
});

describe('inspectJpeg: property', () => {
  const outcomeOk = (r: ReturnType<typeof inspectJpeg>) => {
    if (r.ok) {
      expect(Object.keys(r).sort()).toEqual(['height', 'ok', 'width']);
      expect(r.width).toBeGreaterThan(0);
      expect(r.height).toBeGreaterThan(0);
      expect(r.width).toBeLessThanOrEqual(LIMITS.maxWidth);
      expect(r.height).toBeLessThanOrEqual(LIMITS.maxHeight);
    } else {
      expect(CODES).toContain(r.code);
      expect(typeof r.detail).toBe('string');
    }
  };

  it('random bytes never throw and map to one outcome', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          // Random bytes behind a valid SOI reach deeper into the parser.
          fc.uint8Array({ maxLength: 300 }).map((b) => Uint8Array.from([0xff, 0xd8, ...b])),
        ),
        (bytes) => outcomeOk(inspectJpeg(Buffer.from(bytes), LIMITS)),
      ),
      { numRuns: 2000 },
    );
  });

  it('mutated and truncated real JPEGs never throw and map to one outcome', () => {
    // The header region holds the segments the parser walks; mutations are aimed there mostly.
    const headerEnd = segmentAt(face, SOS) + 20;
    const mutation = fc.record({
      at: fc.oneof(fc.nat(headerEnd - 1), fc.nat(face.length - 1)),
      value: fc.integer({ min: 0, max: 255 }),
    });
    fc.assert(
      fc.property(fc.array(mutation, { maxLength: 6 }), fc.option(fc.nat(face.length)), (mutations, cut) => {
        const data = Buffer.from(face);
        for (const m of mutations) data[m.at] = m.value;
        outcomeOk(inspectJpeg(cut === null ? data : data.subarray(0, cut), LIMITS));
      }),
      { numRuns: 1000 },
    );
  });
});
