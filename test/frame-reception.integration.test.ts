import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeFrame } from '../src/handler/frame-header.js';
import { frame, scene, startTestApp, type TestApp, BRIGHTNESS_MODEL } from './helpers/app.js';
import { TestClient, type Msg } from './helpers/client.js';

const faces = scene('face');
const face = faces[0];

/** A copy of `jpeg` whose start-of-frame claims another size (and sample precision). */
function withSof(jpeg: Buffer, width: number, height: number, precision = 8): Buffer {
  const out = Buffer.from(jpeg);
  for (let i = 2; i < out.length - 9; i++) {
    if (out[i] === 0xff && out[i + 1] >= 0xc0 && out[i + 1] <= 0xc2) {
      out[i + 4] = precision;
      out.writeUInt16BE(height, i + 5);
      out.writeUInt16BE(width, i + 7);
      return out;
    }
  }
  throw new Error('no SOF');
}

/** Longest a frame waits for a missing earlier seq in these sessions. */
const REORDER_MAX_WAIT_MS = 300;
const received = (s: Msg) => s.framesAnalyzed + s.framesRejected + s.framesDropped;

describe('frame reception', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ REORDER_MAX_FRAMES: '3', REORDER_MAX_WAIT_MS: String(REORDER_MAX_WAIT_MS) });
  });
  afterAll(() => t.close());

  it('bad-input corpus: each input gets its documented outcome and the session goes on', async () => {
    const c = await TestClient.connect(t.url);
    const now = Date.now();
    const at = (seq: number, image: Buffer, extra: { version?: number; format?: number } = {}) =>
      encodeFrame({ format: 1, seq, captureTs: now + seq * 200, ...extra }, image);
    const png = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex');
    const corpus: Array<[string, Buffer, string | null]> = [
      ['truncated header', at(0, face).subarray(0, 9), 'frame_invalid'],
      ['wrong version', at(0, face, { version: 2 }), 'unsupported_version'],
      ['wrong format', at(0, face, { format: 7 }), 'unsupported_format'],
      ['zero-length image', at(0, Buffer.alloc(0)), 'frame_invalid'],
      ['oversized image', at(0, Buffer.concat([face, Buffer.alloc(520 * 1024)])), 'frame_too_large'],
      ['PNG labelled JPEG', at(0, png), 'jpeg_invalid'],
      ['60000x60000 SOF', at(0, withSof(face, 60000, 60000)), 'image_too_large'],
      ['truncated JPEG', at(0, face.subarray(0, face.length - 1000)), 'jpeg_truncated'],
      ['well-formed but undecodable (12-bit samples)', at(0, withSof(face, 640, 480, 12)), 'image_undecodable'],
      ['black frame', at(0, frame('black.jpg')), null],
    ];
    // One seq slot per input, so the seq order of the session stays simple.
    corpus.forEach(([, data], seq) => {
      const d = Buffer.from(data);
      if (d.length >= 8) d.writeUInt32BE(seq, 4);
      c.sendRaw(d);
    });
    await c.stream(faces, 0);
    for (let seq = corpus.length; seq < corpus.length + 10; seq++) c.sendFrame(faces[seq % 5], seq, now + seq * 200);
    // Inputs 0-4 have no trustworthy header, so no seq slot: units start at seq 5.
    await c.until(() => c.results('batch').length === 3);
    expect(c.results('batch')[0]).toMatchObject({ seqFrom: 5, seqTo: 9, framesAnalyzed: 1, counts: { rejected: 9 } });
    const errors = c.errors();
    const expected = corpus.filter(([, , code]) => code).map(([, , code]) => code);
    expect(errors.map((e) => e.code).sort()).toEqual([...expected].sort());
    expect(errors.every((e) => e.fatal === false)).toBe(true);
    // The session kept producing results after all of it.
    const last = c.results('batch').at(-1)!;
    expect(last).toMatchObject({ seqFrom: 15, seqTo: 19, framesAnalyzed: 5 });
    const summary = await c.bye();
    expect(summary).toMatchObject({
      framesReceived: 20,
      framesAnalyzed: 11,
      framesRejected: 9,
      rejected: {
        frame_invalid: 2,
        unsupported_version: 1,
        unsupported_format: 1,
        frame_too_large: 1,
        jpeg_invalid: 1,
        image_too_large: 1,
        jpeg_truncated: 1,
        image_undecodable: 1,
      },
    });
    expect(received(summary)).toBe(summary.framesReceived);
  });

  it('reorders, drops duplicates and late frames, and counts lost seqs per unit', async () => {
    const c = await TestClient.connect(t.url);
    const now = Date.now();
    const send = (seq: number) => c.sendFrame(faces[seq % 5], seq, now + seq * 200);
    // 0 1 3 2 4 | 4(dup) 5 7 8 9 10 11 (6 never comes: given up after 3 held) 6 (late) | 12 13 14
    for (const seq of [0, 1, 3, 2, 4, 4, 5, 7, 8, 9, 10, 11]) send(seq);
    await c.until(() => c.results('batch').length === 2);
    send(6);
    for (const seq of [12, 13, 14]) send(seq);
    await c.until(() => c.results('batch').length === 3);
    const [b0, b1, b2] = c.results('batch');
    expect(b0).toMatchObject({ seqFrom: 0, seqTo: 4, framesAnalyzed: 5, counts: { lost: 0, duplicate: 0, late: 0 } });
    expect(b0.frames.map((f: Msg) => f.seq)).toEqual([0, 1, 2, 3, 4]);
    expect(b1).toMatchObject({ seqFrom: 5, seqTo: 9, framesAnalyzed: 4, counts: { lost: 1, duplicate: 1, late: 0 } });
    expect(b1.frames.map((f: Msg) => f.seq)).toEqual([5, 7, 8, 9]);
    expect(b2).toMatchObject({ seqFrom: 10, seqTo: 14, framesAnalyzed: 5, counts: { late: 1 } });
    const summary = await c.bye();
    expect(summary).toMatchObject({ framesReceived: 16, framesAnalyzed: 14, framesLost: 0, dropped: { duplicate: 1, late: 1 } });
    expect(c.results('window')[0]).toMatchObject({ seqFrom: 0, seqTo: 14, framesAnalyzed: 14, counts: { lost: 1, duplicate: 1, late: 1 } });
  });

  it('a gap is given up after the wait limit even when no more frames come', async () => {
    const c = await TestClient.connect(t.url);
    const now = Date.now();
    for (const seq of [0, 1, 2, 4]) c.sendFrame(faces[seq % 5], seq, now + seq * 200);
    // Seq 3 is given up after REORDER_MAX_WAIT_MS, which completes the unit: its result comes without a bye.
    const batch = await c.waitFor((m) => m.type === 'result' && m.kind === 'batch', REORDER_MAX_WAIT_MS + 15_000, 'the unit with seq 3 given up');
    expect(batch).toMatchObject({ seqFrom: 0, seqTo: 4, framesAnalyzed: 4, counts: { lost: 1 } });
    const summary = await c.bye();
    expect(summary).toMatchObject({ framesReceived: 4, framesAnalyzed: 4, framesLost: 1 });
  });

  it('a seq that restarts from 0 or jumps far ahead re-syncs instead of counting lost frames', async () => {
    const c = await TestClient.connect(t.url);
    const now = Date.now();
    for (let seq = 0; seq < 7; seq++) c.sendFrame(faces[seq % 5], seq, now + seq * 200);
    // The client restarted: seq 0 again, later captureTs.
    for (let seq = 0; seq < 5; seq++) c.sendFrame(faces[seq % 5], seq, now + 5000 + seq * 200);
    // Then a jump of a million.
    for (let seq = 1_000_000; seq < 1_000_005; seq++) c.sendFrame(faces[seq % 5], seq, now + 7000 + (seq - 1_000_000) * 200);
    const summary = await c.bye();
    expect(summary).toMatchObject({ framesReceived: 17, framesAnalyzed: 17, framesLost: 0, resyncs: 2 });
    expect(c.results('batch').map((b) => [b.seqFrom, b.seqTo, b.framesAnalyzed])).toEqual([
      [0, 4, 5],
      [5, 6, 2],
      [0, 4, 5],
      [1_000_000, 1_000_004, 5],
    ]);
    // A re-sync closes the open window.
    expect(c.results('window').map((w) => [w.seqFrom, w.seqTo])).toEqual([
      [0, 6],
      [0, 4],
      [1_000_000, 1_000_004],
    ]);
  });

  it('a captureTs far from the session clock is refused as timestamp_invalid', async () => {
    const c = await TestClient.connect(t.url);
    const now = Date.now();
    for (let seq = 0; seq < 4; seq++) c.sendFrame(faces[seq % 5], seq, now + seq * 200);
    c.sendFrame(face, 4, now + 3_600_000);
    const err = await c.waitFor((m) => m.type === 'error');
    expect(err).toMatchObject({ code: 'timestamp_invalid', seq: 4, fatal: false });
    const summary = await c.bye();
    expect(summary).toMatchObject({ framesReceived: 5, framesAnalyzed: 4, framesLost: 0, rejected: { timestamp_invalid: 1 } });
    expect(typeof summary.clockSkewMs).toBe('number');
    expect(Math.abs(summary.clockSkewMs)).toBeLessThan(5000);
  });
});

describe('rate limit', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      ...BRIGHTNESS_MODEL,
      RATE_BURST_FRAMES: '10',
      RATE_ABUSE_FRAMES: '40',
    });
  });
  afterAll(() => t.close());

  it('frames above the fps and burst are dropped as rate_limited with one notice', async () => {
    const c = await TestClient.connect(t.url);
    await c.stream(faces, 20);
    const notice = await c.waitFor((m) => m.type === 'notice');
    expect(notice).toMatchObject({ code: 'rate_limited', fps: 5 });
    const summary = await c.bye();
    expect(c.messages.filter((m) => m.type === 'notice')).toHaveLength(1);
    expect(summary.dropped.rate_limited).toBeGreaterThanOrEqual(9);
    expect(summary.framesAnalyzed).toBeGreaterThanOrEqual(10);
    expect(received(summary)).toBe(20);
  });

  it('abuse that persists is closed with 1008', async () => {
    const c = await TestClient.connect(t.url);
    await c.stream(faces, 80);
    expect(await c.waitForClose()).toEqual({ code: 1008, reason: 'rate_limited' });
    expect(c.errors().at(-1)).toMatchObject({ code: 'rate_limited', fatal: true });
  });
});
