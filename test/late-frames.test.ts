/**
 * A frame that comes back a few seqs behind the last one, even with a newer
 * captureTs (a client that re-sends a frame and stamps it again), is a late
 * or duplicate frame: counted as such, never taken for a client that
 * restarted its count. Only a count that starts again at 0 or a jump of
 * RESYNC_GAP_FRAMES re-syncs a session.
 */
import { describe, expect, it } from 'vitest';
import { ClockCheck } from '../src/handler/clock.js';
import { ReorderBuffer, type Slot } from '../src/handler/reorder-buffer.js';

const T0 = 1.7e12;
const slot = (seq: number, captureTs = T0 + 200 * seq): Slot<string> => ({ seq, captureTs, item: `f${seq}` });

describe('a small step back in seq', () => {
  it('is a duplicate in the reorder buffer, even with a newer captureTs', () => {
    const b = new ReorderBuffer<string>({ maxFrames: 5, maxWaitMs: 400, resyncGap: 150 });
    for (let seq = 0; seq < 10; seq++) b.push(slot(seq), 0);
    expect(b.push(slot(5, T0 + 60_000), 0)).toEqual({ verdict: 'duplicate', events: [] });
    // The session goes on where it was.
    expect(b.push(slot(10), 0).events).toEqual([{ kind: 'slot', slot: slot(10) }]);
  });

  it('is a duplicate for every step back short of the resync gap, but seq 0 past the reorder window restarts the count', () => {
    for (let back = 1; back < 150; back++) {
      const b = new ReorderBuffer<string>({ maxFrames: 5, maxWaitMs: 400, resyncGap: 150 });
      const next = 150 + back; // seqs 150 … next-1 handed on
      for (let seq = 150; seq < next; seq++) b.push(slot(seq), 0);
      expect(b.push(slot(next - back, T0 + 1e6), 0).verdict, `${back} back`).toBe('duplicate');
    }
    const b = new ReorderBuffer<string>({ maxFrames: 5, maxWaitMs: 400, resyncGap: 150 });
    for (let seq = 0; seq < 3; seq++) b.push(slot(seq), 0);
    // Within the reorder window a repeated first frame is a repeat, whatever its stamp.
    expect(b.push(slot(0, T0 + 60_000), 0).verdict).toBe('duplicate');
    for (let seq = 3; seq < 8; seq++) b.push(slot(seq), 0);
    expect(b.push(slot(0, T0 + 60_000), 0).events[0]).toEqual({ kind: 'resync', fromSeq: 8, toSeq: 0 });
  });

  it('does not become the clock reference: the frames after it are judged against the newest seq', () => {
    const clock = new ClockCheck(30_000);
    for (let seq = 0; seq < 10; seq++) expect(clock.check(seq, T0 + 200 * seq, T0 + 200 * seq + 50).ok).toBe(true);
    // Seq 5 again, stamped 1.5 s after seq 9.
    expect(clock.check(5, T0 + 1800 + 1500, T0 + 2000).ok).toBe(true);
    expect(clock.check(10, T0 + 2000, T0 + 2050)).toEqual({ ok: true });
    expect(clock.check(11, T0 + 2200, T0 + 2250)).toEqual({ ok: true });
  });
});
