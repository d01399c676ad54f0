import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CodecError, Decoder, decodeBody, encodeToBuffer, MessageType, type Message } from '../src/ipc/codec.js';
import { TEST_DIR } from './helpers/frames.js';

const GOLDEN = path.join(TEST_DIR, 'golden', 'ipc');
const cases: Record<string, any> = JSON.parse(fs.readFileSync(path.join(GOLDEN, 'cases.json'), 'utf8'));

const carriesImages = (type: number) => type === MessageType.Analyse || type === MessageType.Frame;
const toMessage = (c: any): Message => (carriesImages(c.type) ? { ...c, frames: c.frames.map((h: string) => Buffer.from(h, 'hex')) } : c);
const toPlain = (m: any) => (carriesImages(m.type) ? { ...m, frames: m.frames.map((b: Buffer) => b.toString('hex')) } : m);

describe('IPC codec golden files (shared with model/tests/test_codec.py)', () => {
  for (const [name, c] of Object.entries(cases)) {
    it(`${name}: encodes to and decodes from the golden bytes`, () => {
      const golden = fs.readFileSync(path.join(GOLDEN, `${name}.bin`));
      expect(encodeToBuffer(toMessage(c)).equals(golden)).toBe(true);
      const decoded = new Decoder().push(golden);
      expect(decoded).toHaveLength(1);
      expect(toPlain(decoded[0])).toEqual(c);
    });
  }

  it('the header is 12 bytes: length, type, flags, reserved, request id', () => {
    expect(fs.readFileSync(path.join(GOLDEN, 'shutdown.bin')).toString('hex')).toBe('000000080600000000000000');
  });
});

describe('IPC decoder', () => {
  const all = Buffer.concat(Object.keys(cases).map((n) => fs.readFileSync(path.join(GOLDEN, `${n}.bin`))));

  it('reassembles messages split at any byte boundary', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: all.length - 1 }), { maxLength: 12 }), (cuts) => {
        const points = [...new Set(cuts)].sort((a, b) => a - b);
        const d = new Decoder();
        const out: Message[] = [];
        let prev = 0;
        for (const p of [...points, all.length]) {
          out.push(...d.push(all.subarray(prev, p)));
          prev = p;
        }
        expect(out.map(toPlain)).toEqual(Object.values(cases));
        expect(d.pending).toBe(0);
      }),
    );
  });

  it('rejects a length that cannot be a message', () => {
    expect(() => new Decoder().push(Buffer.from('000000040100000000000000', 'hex'))).toThrow(CodecError);
    expect(() => new Decoder().push(Buffer.from('ffffffff0100000000000000', 'hex'))).toThrow(CodecError);
  });

  it('rejects unknown types, bad JSON and truncated ANALYSE payloads', () => {
    expect(() => decodeBody(99, 0, Buffer.alloc(0))).toThrow(/unknown message type/);
    expect(() => decodeBody(MessageType.Result, 1, Buffer.from('{nope'))).toThrow(/bad JSON/);
    const analyse = fs.readFileSync(path.join(GOLDEN, 'analyse.bin'));
    expect(() => decodeBody(MessageType.Analyse, 7, analyse.subarray(12, analyse.length - 1))).toThrow(/truncated/);
    expect(() => decodeBody(MessageType.Analyse, 7, Buffer.concat([analyse.subarray(12), Buffer.from([0])]))).toThrow(/trailing/);
  });

  it('refuses a FRAME that carries other than one image, on both ends', () => {
    const two = encodeToBuffer({ ...toMessage(cases.analyse), id: 11 } as Message).subarray(12);
    expect(() => decodeBody(MessageType.Frame, 11, two)).toThrow(/exactly one frame, not 2/);
    const meta = cases.frame.meta;
    expect(() => encodeToBuffer({ type: MessageType.Frame, id: 11, meta, frames: [] } as unknown as Message)).toThrow(/exactly one frame/);
    const frame = fs.readFileSync(path.join(GOLDEN, 'frame.bin'));
    expect(() => decodeBody(MessageType.Frame, 11, frame.subarray(12, frame.length - 1))).toThrow(/FRAME payload is truncated/);
  });

  it('never throws anything but CodecError on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          new Decoder().push(Buffer.from(bytes));
        } catch (err) {
          expect(err).toBeInstanceOf(CodecError);
        }
      }),
    );
  });
});
