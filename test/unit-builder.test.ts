import { describe, expect, it } from 'vitest';
import type { ReorderEvent } from '../src/handler/reorder-buffer.js';
import { UnitBuilder, zeroCounts, type FrameEntry, type Unit, type UnitCounts } from '../src/handler/unit-builder.js';

const entry = (seq: number): FrameEntry => ({
  seq,
  captureTs: 1.7e12 + 200 * seq,
  format: 1,
  width: 640,
  height: 480,
  image: Buffer.from([seq & 0xff]),
  receivedAt: seq,
});

type Ev = ReorderEvent<FrameEntry>;
const frameEv = (seq: number): Ev => ({ kind: 'slot', slot: { seq, captureTs: 1.7e12 + 200 * seq, item: entry(seq) } });
const refusedEv = (seq: number, refused: 'rejected' | 'shed'): Ev => ({
  kind: 'slot',
  slot: { seq, captureTs: 1.7e12 + 200 * seq, item: null, refused },
});
const lostEv = (seqFrom: number, seqTo: number): Ev => ({ kind: 'lost', seqFrom, seqTo });
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const counts = (c: Partial<UnitCounts>): UnitCounts => ({ ...zeroCounts(), ...c });

/** The fields that say where a unit sits, without the frames' bytes. */
const shape = (u: Unit) => ({
  seqFrom: u.seqFrom,
  seqTo: u.seqTo,
  slots: u.slots,
  frames: u.frames.map((f) => f.seq),
  closesWindow: u.closesWindow,
  window: [u.windowSeqFrom, u.windowSeqTo],
});

describe('UnitBuilder: batches and windows', () => {
  it('cuts seqs 0..99 into 20 batches of 5 and closes a window every 50', () => {
    const b = new UnitBuilder(5, 50);
    const units = b.consume(range(0, 99).map(frameEv), 123);
    expect(units).toHaveLength(20);
    units.forEach((u, k) => {
      expect(shape(u)).toEqual({
        seqFrom: 5 * k,
        seqTo: 5 * k + 4,
        slots: 5,
        frames: range(5 * k, 5 * k + 4),
        closesWindow: k === 9 || k === 19,
        window: k < 10 ? [0, 5 * k + 4] : [50, 5 * k + 4],
      });
      expect(u.counts).toEqual(zeroCounts());
      expect(u.windowCounts).toEqual(u.closesWindow ? zeroCounts() : null);
      expect(u.createdAt).toBe(123);
    });
    expect(units.filter((u) => u.closesWindow).map((u) => [u.windowSeqFrom, u.windowSeqTo])).toEqual([
      [0, 49],
      [50, 99],
    ]);
    expect(b.open).toBeNull();
    expect(b.flush(124)).toBeNull();
  });

  it('aligns batches on the first seq it sees, not on multiples of the batch size', () => {
    const b = new UnitBuilder(5, 10);
    const units = b.consume(range(7, 16).map(frameEv), 0);
    expect(units.map(shape)).toEqual([
      { seqFrom: 7, seqTo: 11, slots: 5, frames: range(7, 11), closesWindow: false, window: [7, 11] },
      { seqFrom: 12, seqTo: 16, slots: 5, frames: range(12, 16), closesWindow: true, window: [7, 16] },
    ]);
  });

  it('counts lost seqs in the batch whose range holds them, inside and across batch boundaries', () => {
    const b = new UnitBuilder(5, 50);
    const units = b.consume(
      [
        frameEv(0),
        lostEv(1, 2), // inside batch 0..4
        frameEv(3),
        lostEv(4, 11), // the end of batch 0..4, all of 5..9, the start of 10..14
        frameEv(12),
        frameEv(13),
        frameEv(14),
      ],
      0,
    );
    expect(units.map((u) => [u.seqFrom, u.seqTo, u.slots, u.frames.map((f) => f.seq), u.counts.lost])).toEqual([
      [0, 4, 5, [0, 3], 3],
      [5, 9, 5, [], 5],
      [10, 14, 5, [12, 13, 14], 2],
    ]);
  });

  it('counts refused slots as rejected or shed, with no frame', () => {
    const b = new UnitBuilder(5, 50);
    const [unit] = b.consume([frameEv(0), refusedEv(1, 'rejected'), refusedEv(2, 'shed'), refusedEv(3, 'shed'), frameEv(4)], 0);
    expect(shape(unit)).toMatchObject({ seqFrom: 0, seqTo: 4, slots: 5, frames: [0, 4] });
    expect(unit.counts).toEqual(counts({ rejected: 1, shed: 2 }));
  });

  it('counts a refused slot without a reason as rejected', () => {
    const b = new UnitBuilder(1, 1);
    const [unit] = b.consume([{ kind: 'slot', slot: { seq: 0, captureTs: 0, item: null } }], 0);
    expect(unit.counts).toEqual(counts({ rejected: 1 }));
  });

  it('attributes note() to the open batch', () => {
    const b = new UnitBuilder(5, 50);
    expect(b.consume([frameEv(0), frameEv(1)], 0)).toEqual([]);
    b.note('duplicate');
    b.note('late', 2);
    b.note('rateLimited', 3);
    const [first] = b.consume(range(2, 4).map(frameEv), 0);
    expect(first.counts).toEqual(counts({ duplicate: 1, late: 2, rateLimited: 3 }));
    b.note('rejected');
    const [second] = b.consume(range(5, 9).map(frameEv), 0);
    expect(second.counts).toEqual(counts({ rejected: 1 }));
  });

  it('windowCounts sums the counts of the window’s batches', () => {
    const b = new UnitBuilder(5, 15);
    const units = [
      ...b.consume([frameEv(0), lostEv(1, 1), refusedEv(2, 'shed'), frameEv(3), frameEv(4)], 0),
      ...b.consume([lostEv(5, 7), frameEv(8)], 0),
    ];
    b.note('duplicate', 4);
    units.push(...b.consume([refusedEv(9, 'rejected'), ...range(10, 14).map(frameEv)], 0));
    units.push(...b.consume(range(15, 19).map(frameEv), 0));
    b.note('late');
    units.push(...b.consume([lostEv(20, 29)], 0));
    expect(units.map((u) => u.counts)).toEqual([
      counts({ lost: 1, shed: 1 }),
      counts({ lost: 3, duplicate: 4, rejected: 1 }),
      zeroCounts(),
      zeroCounts(),
      counts({ lost: 5, late: 1 }),
      counts({ lost: 5 }),
    ]);
    expect(units.map((u) => u.windowCounts)).toEqual([
      null,
      null,
      counts({ lost: 4, shed: 1, duplicate: 4, rejected: 1 }),
      null,
      null,
      counts({ lost: 10, late: 1 }),
    ]);
    expect(units.filter((u) => u.closesWindow).map((u) => [u.windowSeqFrom, u.windowSeqTo])).toEqual([
      [0, 14],
      [15, 29],
    ]);
  });
});

describe('UnitBuilder: the open unit', () => {
  it('is the unit the cutting call returns: its frames are in it as they come, and it is complete once cut', () => {
    const b = new UnitBuilder(5, 50);
    expect(b.open).toBeNull();
    expect(b.consume([frameEv(0)], 10)).toEqual([]);
    const open = b.open!;
    expect([open.complete, open.frames.map((f) => f.seq), open.seqFrom, open.createdAt]).toEqual([false, [0], 0, 10]);
    expect(b.consume([frameEv(1), lostEv(2, 2), frameEv(3)], 11)).toEqual([]);
    expect(b.open).toBe(open);
    expect([open.complete, open.frames.map((f) => f.seq), open.slots]).toEqual([false, [0, 1, 3], 4]);
    const [cut] = b.consume([frameEv(4), frameEv(5)], 12);
    expect(cut).toBe(open);
    expect([cut.complete, cut.frames.map((f) => f.seq), cut.counts.lost, cut.createdAt]).toEqual([true, [0, 1, 3, 4], 1, 12]);
    // Seq 5 opened the next unit.
    const next = b.open!;
    expect(next).not.toBe(open);
    expect([next.complete, next.frames.map((f) => f.seq)]).toEqual([false, [5]]);
  });

  it('is what flush and cutPartial return', () => {
    const b = new UnitBuilder(5, 50);
    b.consume([frameEv(0), frameEv(1)], 0);
    const first = b.open!;
    expect(b.cutPartial(1)).toBe(first);
    expect([first.complete, first.closesWindow, b.open]).toEqual([true, false, null]);
    b.consume([frameEv(2)], 2);
    const second = b.open!;
    expect(second).not.toBe(first);
    expect(b.flush(3)).toBe(second);
    expect([second.complete, second.closesWindow, second.frames.map((f) => f.seq), b.open]).toEqual([true, true, [2], null]);
  });

  it('is absent before any slot and after a cut, and a window-closing unit without slots is complete at once', () => {
    const b = new UnitBuilder(5, 50);
    expect(b.cutPartial(0)).toBeNull();
    b.consume(range(0, 4).map(frameEv), 0);
    expect(b.open).toBeNull();
    expect(b.cutPartial(0)).toBeNull();
    const unit = b.flush(0)!;
    expect([unit.slots, unit.complete, unit.closesWindow]).toEqual([0, true, true]);
  });
});

describe('UnitBuilder: flush', () => {
  it('mid-batch, closes the window with a partial batch', () => {
    const b = new UnitBuilder(5, 50);
    b.consume(range(0, 6).map(frameEv), 0);
    b.note('duplicate');
    const unit = b.flush(99)!;
    expect(shape(unit)).toEqual({ seqFrom: 5, seqTo: 6, slots: 2, frames: [5, 6], closesWindow: true, window: [0, 6] });
    expect(unit.counts).toEqual(counts({ duplicate: 1 }));
    expect(unit.windowCounts).toEqual(counts({ duplicate: 1 }));
    expect(unit.createdAt).toBe(99);
    expect(b.open).toBeNull();
    expect(b.flush(100)).toBeNull();
  });

  it('returns null right after a window closed', () => {
    const b = new UnitBuilder(5, 10);
    expect(b.consume(range(0, 9).map(frameEv), 0).at(-1)!.closesWindow).toBe(true);
    expect(b.flush(0)).toBeNull();
  });

  it('returns null before any slot', () => {
    expect(new UnitBuilder(5, 50).flush(0)).toBeNull();
  });

  it('with an empty batch but an open window, returns a unit of 0 slots that closes the window', () => {
    const b = new UnitBuilder(5, 50);
    b.consume([...range(0, 8).map(frameEv), lostEv(9, 9)], 0);
    const unit = b.flush(0)!;
    expect(shape(unit)).toEqual({ seqFrom: 9, seqTo: 9, slots: 0, frames: [], closesWindow: true, window: [0, 9] });
    expect(unit.counts).toEqual(zeroCounts());
    expect(unit.windowCounts).toEqual(counts({ lost: 1 }));
    expect(b.flush(0)).toBeNull();
  });
});

describe('UnitBuilder: re-sync', () => {
  it('closes the open batch and window and restarts the alignment at the new seq', () => {
    const b = new UnitBuilder(5, 50);
    expect(b.consume(range(0, 6).map(frameEv), 0)).toHaveLength(1);
    const units = b.consume(
      [{ kind: 'resync', fromSeq: 7, toSeq: 1000 }, ...range(1000, 1004).map(frameEv)],
      0,
    );
    expect(units.map(shape)).toEqual([
      { seqFrom: 5, seqTo: 6, slots: 2, frames: [5, 6], closesWindow: true, window: [0, 6] },
      { seqFrom: 1000, seqTo: 1004, slots: 5, frames: range(1000, 1004), closesWindow: false, window: [1000, 1004] },
    ]);
    // The next window is 50 slots from 1000.
    const rest = b.consume(range(1005, 1049).map(frameEv), 0);
    expect(rest.at(-1)!.closesWindow).toBe(true);
    expect([rest.at(-1)!.windowSeqFrom, rest.at(-1)!.windowSeqTo]).toEqual([1000, 1049]);
    expect(rest.filter((u) => u.closesWindow)).toHaveLength(1);
  });

  it('after a re-sync to a lower seq (a restarted client), aligns on that seq', () => {
    const b = new UnitBuilder(5, 50);
    b.consume(range(0, 12).map(frameEv), 0);
    const units = b.consume([{ kind: 'resync', fromSeq: 13, toSeq: 0 }, ...range(0, 4).map(frameEv)], 0);
    expect(units.map(shape)).toEqual([
      { seqFrom: 10, seqTo: 12, slots: 3, frames: [10, 11, 12], closesWindow: true, window: [0, 12] },
      { seqFrom: 0, seqTo: 4, slots: 5, frames: range(0, 4), closesWindow: false, window: [0, 4] },
    ]);
  });

  it('a re-sync just after a window closed adds no unit', () => {
    const b = new UnitBuilder(5, 10);
    b.consume(range(0, 9).map(frameEv), 0);
    expect(b.consume([{ kind: 'resync', fromSeq: 10, toSeq: 500 }], 0)).toEqual([]);
    expect(b.consume(range(500, 504).map(frameEv), 0).map(shape)).toEqual([
      { seqFrom: 500, seqTo: 504, slots: 5, frames: range(500, 504), closesWindow: false, window: [500, 504] },
    ]);
  });
});
