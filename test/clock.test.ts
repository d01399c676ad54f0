import { describe, expect, it } from 'vitest';
import { ClockCheck } from '../src/handler/clock.js';

const T = 1.7e12;
/** Frames at 5 fps whose arrival is 50 ms (delay plus skew) after their capture. */
const DELAY = 50;

/** A check with `n` steady frames behind it; returns it and the next seq. */
function steady(n: number, toleranceMs = 2000): { clock: ClockCheck; seq: number } {
  const clock = new ClockCheck(toleranceMs);
  for (let seq = 0; seq < n; seq++) expect(clock.check(seq, T + 200 * seq, T + 200 * seq + DELAY)).toEqual({ ok: true });
  return { clock, seq: n };
}

describe('ClockCheck: skew estimate', () => {
  it('is null before any frame', () => {
    expect(new ClockCheck(2000).skewMs).toBeNull();
  });

  it('is the median offset (arrival minus captureTs)', () => {
    const clock = new ClockCheck(1e9);
    const offsets = [50, 10, 30, 70, 20];
    offsets.forEach((o, seq) => clock.check(seq, T + 200 * seq, T + 200 * seq + o));
    expect(clock.skewMs).toBe(30);
    // Unaffected by one wild value.
    clock.check(5, T + 1000, T + 1000 + 1e6);
    clock.check(6, T + 1200, T + 1200 + 40);
    expect(clock.skewMs).toBe(40); // sorted 10 20 30 [40] 50 70 1e6
  });

  it('is the median of the last 49 offsets over a long stream, repeated values included', () => {
    const clock = new ClockCheck(1e9);
    const offsets: number[] = [];
    let x = 7;
    for (let seq = 0; seq < 500; seq++) {
      x = (x * 48271) % 2147483647; // a fixed pseudo-random sequence
      const o = (x % 200) - 100; // many repeats among 200 values
      offsets.push(o);
      clock.check(seq, T + 200 * seq, T + 200 * seq + o);
      const recent = offsets.slice(-49).sort((a, b) => a - b);
      expect(clock.skewMs).toBe(recent[Math.floor(recent.length / 2)]);
    }
  });

  it('with an even number of samples takes the upper of the two middle ones', () => {
    const clock = new ClockCheck(1e9);
    [10, 40, 20, 30].forEach((o, seq) => clock.check(seq, T, T + o));
    expect(clock.skewMs).toBe(30);
  });

  it('is negative for a client clock ahead of the server', () => {
    const clock = new ClockCheck(2000);
    for (let seq = 0; seq < 3; seq++) clock.check(seq, T + 200 * seq + 5000, T + 200 * seq);
    expect(clock.skewMs).toBe(-5000);
  });

  it('takes the first frame as it comes, whatever its clock', () => {
    expect(new ClockCheck(2000).check(0, 1, T)).toEqual({ ok: true });
  });
});

describe('ClockCheck: insane timestamps', () => {
  it('rejects a captureTs further in the future than the tolerance, not one at it', () => {
    const at = steady(10);
    expect(at.clock.check(at.seq, T + 200 * at.seq + 2000, T + 200 * at.seq + DELAY)).toEqual({ ok: true });
    const beyond = steady(10);
    expect(beyond.clock.check(beyond.seq, T + 200 * beyond.seq + 2001, T + 200 * beyond.seq + DELAY)).toEqual({
      ok: false,
      detail: "captureTs is 2001 ms away from the session's clock",
    });
  });

  it('rejects a captureTs further in the past than the tolerance, not one at it', () => {
    const at = steady(10);
    expect(at.clock.check(at.seq, T + 200 * at.seq - 1000, T + 200 * at.seq + DELAY + 1000)).toEqual({ ok: true });
    const beyond = steady(10);
    expect(beyond.clock.check(beyond.seq, T + 200 * beyond.seq, T + 200 * beyond.seq + DELAY + 2001)).toEqual({
      ok: false,
      detail: "captureTs is -2001 ms away from the session's clock",
    });
  });

  it('rejects a captureTs running backwards more than 1 s while seq runs forwards', () => {
    const { clock } = steady(10, 10_000); // last accepted: seq 9 at T + 1800
    expect(clock.check(10, T + 1800 - 1001, T + 2000 + DELAY)).toEqual({
      ok: false,
      detail: 'captureTs runs 1001 ms backwards while seq runs forwards',
    });
    // Judged against the last accepted frame, not the rejected one.
    expect(clock.check(11, T + 1800 - 1000, T + 2200 + DELAY)).toEqual({ ok: true });
  });

  it('accepts an older captureTs for an older seq (a frame that arrives out of order)', () => {
    const { clock } = steady(10, 10_000);
    expect(clock.check(3, T + 600, T + 2000 + DELAY)).toEqual({ ok: true });
    // A restarted client counts from 0 again with its clock running on.
    expect(clock.check(0, T + 2200, T + 2200 + DELAY)).toEqual({ ok: true });
  });
});

describe('ClockCheck: a stepped client clock', () => {
  /** 49 steady frames (a full sample window), then frames from a clock stepped by `stepMs`. */
  function stepped(stepMs: number, frames: number): string {
    const { clock, seq } = steady(49);
    let verdicts = '';
    for (let j = 0; j < frames; j++) {
      const s = seq + j;
      verdicts += clock.check(s, T + 200 * s + stepMs, T + 200 * s + DELAY).ok ? 'Y' : 'n';
    }
    return verdicts;
  }

  it('forward by an hour: the first 25 frames are rejected, from the 26th on they are accepted', () => {
    // Once 25 of the 49 samples come from the new clock, the median is on its side.
    expect(stepped(3_600_000, 40)).toBe('n'.repeat(25) + 'Y'.repeat(15));
  });

  it('the estimate follows the new clock', () => {
    const { clock, seq } = steady(49);
    for (let j = 0; j < 26; j++) clock.check(seq + j, T + 200 * (seq + j) + 3_600_000, T + 200 * (seq + j) + DELAY);
    expect(clock.skewMs).toBe(DELAY - 3_600_000);
  });

  // Regression: after a step back the reference frame must follow the new
  // clock. The 26th frame agrees with the estimate but still runs backwards
  // against the last frame of the old clock; it becomes the reference.
  it('back by an hour: accepted again from the 27th frame', () => {
    expect(stepped(-3_600_000, 40)).toBe('n'.repeat(26) + 'Y'.repeat(14));
  });
});
