import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ReorderBuffer, type ReorderEvent, type Slot, type Verdict } from '../src/handler/reorder-buffer.js';

const T0 = 1.7e12;
const OPTS = { maxFrames: 3, maxWaitMs: 400, resyncGap: 150 };

/** A slot whose item names its seq, captured 200 ms apart as at 5 fps. */
const slot = (seq: number, captureTs = T0 + 200 * seq): Slot<string> => ({ seq, captureTs, item: `f${seq}` });

/** Events in a compact form: 3 for a released slot, [from, to] for a lost range, 'resync a→b'. */
const brief = (events: ReorderEvent<string>[]) =>
  events.map((e) => (e.kind === 'slot' ? e.slot.seq : e.kind === 'lost' ? [e.seqFrom, e.seqTo] : `resync ${e.fromSeq}→${e.toSeq}`));

/** Push the seqs in order at time 0; returns every verdict and the events in order. */
function pushAll(buffer: ReorderBuffer<string>, seqs: number[], now = 0) {
  const verdicts: Verdict[] = [];
  const events: ReorderEvent<string>[] = [];
  for (const s of seqs) {
    const r = buffer.push(slot(s), now);
    verdicts.push(r.verdict);
    events.push(...r.events);
  }
  return { verdicts, events: brief(events) };
}

describe('ReorderBuffer: order', () => {
  it('passes frames that arrive in order straight through', () => {
    const b = new ReorderBuffer<string>(OPTS);
    const r = b.push(slot(7), 0);
    expect(r).toEqual({ verdict: 'accepted', events: [{ kind: 'slot', slot: slot(7) }] });
    expect(pushAll(b, [8, 9, 10])).toEqual({ verdicts: ['accepted', 'accepted', 'accepted'], events: [8, 9, 10] });
    expect(b.size).toBe(0);
  });

  it('releases a swap (0, 2, 1, 3) in order with nothing lost', () => {
    const b = new ReorderBuffer<string>(OPTS);
    expect(brief(b.push(slot(0), 0).events)).toEqual([0]);
    expect(brief(b.push(slot(2), 0).events)).toEqual([]);
    expect(b.size).toBe(1);
    expect(b.heldItems()).toEqual(['f2']);
    expect(brief(b.push(slot(1), 0).events)).toEqual([1, 2]);
    expect(brief(b.push(slot(3), 0).events)).toEqual([3]);
    expect(brief(b.drain())).toEqual([]);
  });

  it('keeps refused slots (item null) in their place', () => {
    const b = new ReorderBuffer<string>(OPTS);
    b.push(slot(0), 0);
    expect(b.push({ seq: 2, captureTs: T0 + 400, item: null, refused: 'rejected' }, 0).events).toEqual([]);
    expect(b.heldItems()).toEqual([]);
    const { events } = b.push(slot(1), 0);
    expect(events).toEqual([
      { kind: 'slot', slot: slot(1) },
      { kind: 'slot', slot: { seq: 2, captureTs: T0 + 400, item: null, refused: 'rejected' } },
    ]);
  });
});

describe('ReorderBuffer: duplicates and late frames', () => {
  it('calls a second copy of a released seq a duplicate', () => {
    const b = new ReorderBuffer<string>(OPTS);
    pushAll(b, [0, 1, 2]);
    expect(b.push(slot(1), 0)).toEqual({ verdict: 'duplicate', events: [] });
    expect(b.push(slot(2), 0)).toEqual({ verdict: 'duplicate', events: [] });
  });

  it('calls a second copy of a held seq a duplicate and keeps the first', () => {
    const b = new ReorderBuffer<string>(OPTS);
    pushAll(b, [0, 2]);
    expect(b.push({ ...slot(2), item: 'second copy' }, 0)).toEqual({ verdict: 'duplicate', events: [] });
    expect(b.size).toBe(1);
    expect(b.push(slot(1), 0).events.map((e) => (e.kind === 'slot' ? e.slot.item : e.kind))).toEqual(['f1', 'f2']);
  });

  it('gives up a gap once more than maxFrames wait behind it, with the exact lost range', () => {
    const b = new ReorderBuffer<string>(OPTS);
    pushAll(b, [0]);
    // 1 and 2 missing; 3, 4, 5 wait (maxFrames = 3), 6 is one too many.
    expect(pushAll(b, [3, 4, 5])).toEqual({ verdicts: ['accepted', 'accepted', 'accepted'], events: [] });
    expect(b.size).toBe(3);
    expect(pushAll(b, [6]).events).toEqual([[1, 2], 3, 4, 5, 6]);
    expect(b.size).toBe(0);
  });

  it('calls a given-up seq that arrives after all late, and a second copy of it a duplicate', () => {
    const b = new ReorderBuffer<string>(OPTS);
    pushAll(b, [0, 3, 4, 5, 6]);
    expect(b.push(slot(2), 0)).toEqual({ verdict: 'late', events: [] });
    expect(b.push(slot(1), 0)).toEqual({ verdict: 'late', events: [] });
    expect(b.push(slot(2), 0)).toEqual({ verdict: 'duplicate', events: [] });
    expect(b.push(slot(1), 0)).toEqual({ verdict: 'duplicate', events: [] });
    // A released seq is still a duplicate, not late.
    expect(b.push(slot(3), 0)).toEqual({ verdict: 'duplicate', events: [] });
  });

  it('gives up a gap by time through poll, after maxWaitMs and not before', () => {
    const b = new ReorderBuffer<string>(OPTS);
    b.push(slot(0), 1000);
    b.push(slot(2), 1100);
    b.push(slot(3), 1200);
    expect(b.poll(1100)).toEqual([]);
    expect(b.poll(1100 + 400)).toEqual([]); // waited exactly maxWaitMs: not yet
    expect(b.size).toBe(2);
    expect(brief(b.poll(1100 + 401))).toEqual([[1, 1], 2, 3]);
    expect(b.size).toBe(0);
    expect(b.poll(5000)).toEqual([]);
    expect(b.push(slot(1), 5000).verdict).toBe('late');
  });

  it('times each gap from the arrival of the frames behind it', () => {
    const b = new ReorderBuffer<string>({ ...OPTS, maxFrames: 10 });
    b.push(slot(0), 0);
    b.push(slot(2), 0); // behind the gap at 1
    b.push(slot(5), 300); // behind the gap at 3..4
    expect(brief(b.poll(401))).toEqual([[1, 1], 2]);
    expect(brief(b.poll(700))).toEqual([]);
    expect(brief(b.poll(701))).toEqual([[3, 4], 5]);
  });

  it('drain hands on everything held, giving up the gaps between', () => {
    const b = new ReorderBuffer<string>({ ...OPTS, maxFrames: 10 });
    pushAll(b, [10, 12, 13, 17]);
    expect(brief(b.drain())).toEqual([[11, 11], 12, 13, [14, 16], 17]);
    expect(b.size).toBe(0);
    expect(b.drain()).toEqual([]);
    // The sequence goes on after a drain.
    expect(pushAll(b, [18]).events).toEqual([18]);
    expect(b.push(slot(15), 0).verdict).toBe('late');
  });
});

describe('ReorderBuffer: re-sync', () => {
  it('re-syncs on a jump of resyncGap or more ahead, without counting the jump lost', () => {
    const b = new ReorderBuffer<string>(OPTS);
    pushAll(b, [0, 1, 3]); // 2 missing, 3 held
    const { verdict, events } = b.push(slot(2 + 150), 0);
    expect(verdict).toBe('accepted');
    // What was held is handed on first (the gap before it given up), then the re-sync.
    expect(brief(events)).toEqual([[2, 2], 3, 'resync 4→152', 152]);
    expect(events.find((e) => e.kind === 'resync')).toEqual({ kind: 'resync', fromSeq: 4, toSeq: 152 });
    expect(pushAll(b, [153]).events).toEqual([153]);
  });

  it('does not re-sync on a jump one short of resyncGap', () => {
    const b = new ReorderBuffer<string>(OPTS);
    pushAll(b, [0]);
    expect(pushAll(b, [149]).events).toEqual([]);
    expect(brief(b.drain())).toEqual([[1, 148], 149]);
  });

  it('re-syncs on a jump of resyncGap or more behind', () => {
    const b = new ReorderBuffer<string>(OPTS);
    pushAll(b, [1000, 1001]);
    // Older captureTs, so only the distance makes it a re-sync.
    const { verdict, events } = b.push(slot(1002 - 150, T0), 0);
    expect(verdict).toBe('accepted');
    expect(brief(events)).toEqual(['resync 1002→852', 852]);
    expect(pushAll(b, [853]).events).toEqual([853]);
    // 1001 - 853 < 150, so an old seq is now a plain held frame, not a re-sync.
    expect(b.push(slot(1001), 0).verdict).toBe('accepted');
  });

  it('a seq one short of resyncGap behind is a duplicate', () => {
    const b = new ReorderBuffer<string>(OPTS);
    pushAll(b, [1000, 1001]);
    expect(b.push(slot(1002 - 149, T0), 0)).toEqual({ verdict: 'duplicate', events: [] });
  });

  it('re-syncs when seq goes back to 0 with a newer captureTs (the client restarted)', () => {
    const b = new ReorderBuffer<string>(OPTS);
    pushAll(b, [0, 1, 2, 3, 4, 5]);
    const restart = { seq: 0, captureTs: T0 + 60_000, item: 'again' };
    const { verdict, events } = b.push(restart, 0);
    expect(verdict).toBe('accepted');
    expect(events).toEqual([
      { kind: 'resync', fromSeq: 6, toSeq: 0 },
      { kind: 'slot', slot: restart },
    ]);
    expect(b.push({ seq: 1, captureTs: T0 + 60_200, item: 'x' }, 0).verdict).toBe('accepted');
  });

  it('a repeated seq 0 with its old captureTs is a duplicate, not a restart', () => {
    const b = new ReorderBuffer<string>(OPTS);
    pushAll(b, [0, 1, 2, 3, 4, 5]);
    expect(b.push(slot(0), 0)).toEqual({ verdict: 'duplicate', events: [] });
  });

  it('a shed slot (clock-checked captureTs) can mark a restart like a frame', () => {
    const b = new ReorderBuffer<string>(OPTS);
    pushAll(b, [0, 1, 2, 3, 4, 5]);
    const shed = { seq: 0, captureTs: T0 + 60_000, item: null, refused: 'shed' as const };
    expect(brief(b.push(shed, 0).events)).toEqual(['resync 6→0', 0]);
  });

  // Regression: a refused frame's captureTs may be what was wrong with it,
  // so its slot must not take part in restart detection.
  it('a rejected slot with an old seq and a far-future captureTs is a duplicate, not a restart', () => {
    const b = new ReorderBuffer<string>(OPTS);
    pushAll(b, [0, 1, 2, 3, 4, 5]);
    const insane = { seq: 2, captureTs: T0 + 86_400_000, item: null, refused: 'rejected' as const };
    expect(b.push(insane, 0)).toEqual({ verdict: 'duplicate', events: [] });
  });

  it('a rejected slot with a far-future captureTs does not hide a later restart', () => {
    const b = new ReorderBuffer<string>(OPTS);
    pushAll(b, [0, 1, 2, 3, 4, 5]);
    b.push({ seq: 6, captureTs: T0 + 86_400_000, item: null, refused: 'rejected' }, 0);
    pushAll(b, [7, 8]);
    // The client restarts a minute later.
    expect(b.push({ seq: 0, captureTs: T0 + 60_000, item: 'again' }, 0).verdict).toBe('accepted');
  });

  it('a late frame with a newer captureTs stays late (a given-up seq is not a restart)', () => {
    const b = new ReorderBuffer<string>(OPTS);
    pushAll(b, [0, 2, 3, 4, 5]); // 1 given up
    expect(b.push(slot(1, T0 + 60_000), 0)).toEqual({ verdict: 'late', events: [] });
  });
});

describe('ReorderBuffer: property', () => {
  const N = 40;
  /**
   * Pushes drawn from a permutation of 0..N-1, some deleted, some
   * repeated, with polls between them, all within resyncGap and with
   * captureTs rising with seq, so there is never a re-sync.
   */
  const scenario = fc
    .tuple(
      fc.shuffledSubarray([...Array(N).keys()], { minLength: 1 }),
      fc.array(fc.nat(N - 1), { maxLength: 15 }),
      fc.array(fc.nat(), { maxLength: 60 }),
      fc.array(fc.integer({ min: 0, max: 200 }), { minLength: 1, maxLength: 60 }),
      fc.record({ maxFrames: fc.integer({ min: 0, max: 8 }), maxWaitMs: fc.integer({ min: 0, max: 500 }) }),
    )
    .map(([seqs, dups, dupAt, steps, opts]) => {
      const pushes = [...seqs];
      dups.forEach((d, i) => pushes.splice((dupAt[i] ?? 0) % (pushes.length + 1), 0, d));
      return { pushes, steps, opts };
    });

  it('accounts for every seq once, releases in order and gives every push one verdict', () => {
    fc.assert(
      fc.property(scenario, ({ pushes, steps, opts }) => {
        const b = new ReorderBuffer<string>({ ...opts, resyncGap: N + 2 });
        const events: ReorderEvent<string>[] = [];
        const tally = { accepted: 0, duplicate: 0, late: 0, ignored: 0 };
        let now = 0;
        pushes.forEach((seq, i) => {
          now += steps[i % steps.length];
          const r = b.push(slot(seq), now);
          tally[r.verdict]++;
          events.push(...r.events);
          if (i % 3 === 2) events.push(...b.poll(now));
        });
        events.push(...b.drain());

        expect(events.some((e) => e.kind === 'resync')).toBe(false);
        expect(tally.accepted + tally.duplicate + tally.late).toBe(pushes.length);
        const released = events.flatMap((e) => (e.kind === 'slot' ? [e.slot.seq] : []));
        for (let i = 1; i < released.length; i++) expect(released[i]).toBeGreaterThan(released[i - 1]);
        const lost = events.flatMap((e) => (e.kind === 'lost' ? Array.from({ length: e.seqTo - e.seqFrom + 1 }, (_, k) => e.seqFrom + k) : []));
        const covered = [...released, ...lost].sort((a, b) => a - b);
        const first = pushes[0];
        const max = Math.max(...pushes);
        expect(covered).toEqual(Array.from({ length: max - first + 1 }, (_, k) => first + k));
        // A distinct seq at or after the first is accepted once if it came in
        // time, or late once if its gap had been given up; the rest are duplicates.
        const distinct = new Set(pushes.filter((s) => s >= first));
        expect(released.length).toBe(tally.accepted);
        expect(tally.late).toBe(lost.filter((s) => distinct.has(s)).length);
        expect(tally.accepted + tally.late).toBe(distinct.size);
        expect(b.size).toBe(0);
      }),
      { numRuns: 300 },
    );
  });
});
