/**
 * The browser client's pure parts, in Node: its frame header against the
 * server's parser (the wire format from both ends), the reconnect rules
 * and the backoff schedule.
 */
import { describe, expect, it } from 'vitest';
import { encodeFrame as serverEncodeFrame, parseFrame } from '../../src/handler/frame-header.js';
import { frame } from '../helpers/frames.js';
import {
  backoffDelay,
  coverCrop,
  defaultStreamUrl,
  encodeFrame,
  FRAME_HEADER_BYTES,
  NO_RETRY_CLOSE_CODES,
  retryAfterOf,
  shouldReconnect,
} from '../../web/jipjung-client.js';

const face = frame('face.jpg');

describe('client frame header', () => {
  it('is byte for byte what the server encodes, and parses back', () => {
    for (const [seq, ts] of [
      [0, 1_700_000_000_000.25],
      [1, 0],
      [0xffffffff, 1_795_916_843_884],
    ]) {
      const ours = Buffer.from(encodeFrame(seq, ts, new Uint8Array(face)));
      expect(ours.equals(serverEncodeFrame({ format: 1, seq, captureTs: ts }, face))).toBe(true);
      const parsed = parseFrame(ours, 1024 * 1024);
      expect(parsed).toMatchObject({ ok: true, header: { version: 1, format: 1, seq, captureTs: ts } });
      if (parsed.ok) expect(parsed.image.equals(face)).toBe(true);
    }
  });

  it('is big-endian: literal bytes', () => {
    const msg = encodeFrame(0x01020304, 1, new Uint8Array([0xff, 0xd8, 0xff, 0xd9]));
    expect(Buffer.from(msg.subarray(0, FRAME_HEADER_BYTES)).toString('hex')).toBe('01010000' + '01020304' + '3ff0000000000000');
  });
});

describe('reconnect rules', () => {
  it('does not retry policy, too-big and unauthorized closes, nor a session the server ended', () => {
    expect([...NO_RETRY_CLOSE_CODES].sort()).toEqual([1008, 1009, 4401, 4409, 4429]);
    expect(retryAfterOf(JSON.stringify({ reason: "restart", retryAfterMs: 1500 }))).toBe(1500);
    expect(retryAfterOf("going away")).toBe(0);
    for (const code of [1008, 1009, 4401]) expect(shouldReconnect(code)).toBe(false);
    expect(shouldReconnect(1000, true)).toBe(false);
  });

  it('retries going away, abnormal closure, internal error, restart, overload and a close without a summary', () => {
    for (const code of [1000, 1001, 1006, 1011, 1012, 1013, 4000]) expect(shouldReconnect(code)).toBe(true);
  });

  it('backs off exponentially with full jitter, capped', () => {
    const backoff = { baseMs: 500, capMs: 15_000 };
    const ceilings = [0, 1, 2, 3, 4, 5, 6, 10, 100].map((a) => backoffDelay(a, backoff, () => 0.999999));
    expect(ceilings).toEqual([499, 999, 1999, 3999, 7999, 14_999, 14_999, 14_999, 14_999]);
    for (let a = 0; a < 10; a++) expect(backoffDelay(a, backoff, () => 0)).toBe(0);
    // Full jitter: uniform over [0, ceiling), so the mean is about half the ceiling.
    const n = 2000;
    let sum = 0;
    for (let i = 0; i < n; i++) sum += backoffDelay(3, backoff);
    expect(sum / n).toBeGreaterThan(1700);
    expect(sum / n).toBeLessThan(2300);
  });
});

describe('helpers', () => {
  it('uses the page host, wss: on https', () => {
    expect(defaultStreamUrl({ protocol: 'http:', host: 'localhost:8080' })).toBe('ws://localhost:8080/v1/stream');
    expect(defaultStreamUrl({ protocol: 'https:', host: 'jipjung.example' })).toBe('wss://jipjung.example/v1/stream');
  });

  it('crops the centre of a wider or taller camera image to 4:3', () => {
    expect(coverCrop(640, 480, 640, 480)).toEqual({ sx: 0, sy: 0, sw: 640, sh: 480 });
    expect(coverCrop(1280, 720, 640, 480)).toEqual({ sx: 160, sy: 0, sw: 960, sh: 720 });
    expect(coverCrop(480, 640, 640, 480)).toEqual({ sx: 0, sy: 140, sw: 480, sh: 360 });
  });
});
