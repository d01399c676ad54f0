/**
 * Puts one session's frames back in seq order, pure state, no I/O.
 *
 * Frames may arrive out of order (the browser encodes asynchronously),
 * twice (a client retry) or not at all. Frames (and the seq slots of
 * frames refused by the cheap checks) wait here until every earlier seq has
 * come, for at most `maxFrames` frames or `maxWaitMs`; then the gap is given
 * up as lost and what follows is handed on. What arrives for a seq already
 * handed on is a `duplicate`; for a seq given up as lost, it is `late`.
 *
 * A seq that jumps `resyncGap` or more ahead or behind, or a count that
 * starts again at 0 (a client that restarted its counter: seq 0, further
 * back than the reorder window, with a captureTs newer than any seen), is a
 * re-sync: whatever is held is handed on and the sequence restarts there,
 * instead of counting millions of lost frames. Any other step back is a late
 * or repeated frame, whatever its captureTs: a client that re-sends a frame
 * may stamp it again, and taking that for a restart would analyse a stretch
 * of seqs twice.
 */

export interface Slot<T> {
  seq: number;
  captureTs: number;
  /** The frame, or null for a seq whose frame was refused or shed on arrival. */
  item: T | null;
  /**
   * Why the frame of this seq is not here: refused on arrival, or (`accounted`)
   * counted by another instance before this one resumed the session.
   */
  refused?: 'rejected' | 'shed' | 'rateLimited' | 'accounted';
}

export type ReorderEvent<T> =
  | { kind: 'slot'; slot: Slot<T> }
  | { kind: 'lost'; seqFrom: number; seqTo: number }
  | { kind: 'resync'; fromSeq: number | null; toSeq: number };

/** `ignored`: a refused frame's slot that would re-sync the session; a bad frame's seq is not trusted that far. */
export type Verdict = 'accepted' | 'duplicate' | 'late' | 'ignored';

export interface ReorderOptions {
  maxFrames: number;
  maxWaitMs: number;
  resyncGap: number;
}

/** How many given-up seqs are remembered to tell `late` from `duplicate`. */
const SKIPPED_MEMORY = 4096;
/** How many seqs with an outcome but no frame (refused or lost) are remembered for a hand-over. */
const ACCOUNTED_MEMORY = 1024;

export class ReorderBuffer<T> {
  private next: number | null = null;
  private newestCaptureTs = -Infinity;
  private readonly held = new Map<number, { slot: Slot<T>; at: number }>();
  private readonly skipped = new Set<number>();
  /** Recent seqs whose outcome is already counted although no frame goes on (refused or lost). */
  private readonly accounted = new Set<number>();
  /** Seqs another instance counted, not to be counted lost here. */
  private readonly countedElsewhere = new Set<number>();

  constructor(private readonly opts: ReorderOptions) {}

  /** The seq expected next (null before the first frame). */
  get expected(): number | null {
    return this.next;
  }

  /**
   * Go on from `seq` (a session resumed from its stored state; only before
   * the first frame). `counted` are later seqs whose outcome the previous
   * instance already counted: a gap over them is not lost here.
   */
  expect(seq: number | null, counted: readonly number[] = []): void {
    if (this.next !== null || this.held.size > 0) return;
    this.next = seq;
    for (const s of counted) if (seq !== null && s >= seq) this.countedElsewhere.add(s);
  }

  /** Seqs from `from` on whose outcome is counted although no frame of them goes on. */
  accountedFrom(from: number | null): number[] {
    return from === null ? [] : [...this.accounted].filter((s) => s >= from);
  }

  private remember(seq: number): void {
    this.accounted.add(seq);
    if (this.accounted.size > ACCOUNTED_MEMORY) this.accounted.delete(this.accounted.values().next().value!);
  }

  /** Slots held waiting for an earlier seq. */
  get size(): number {
    return this.held.size;
  }

  heldItems(): T[] {
    return [...this.held.values()].map((h) => h.slot.item).filter((x): x is T => x !== null);
  }

  /**
   * Offer a slot. Returns what it decided about it and the events it
   * released, in seq order.
   */
  push(slot: Slot<T>, now: number): { verdict: Verdict; events: ReorderEvent<T>[] } {
    const events: ReorderEvent<T>[] = [];
    // The captureTs of a frame refused by the checks may be what was wrong with it.
    const trusted = slot.refused !== 'rejected';
    if (this.next === null) {
      this.next = slot.seq;
    } else if (this.isResync(slot, trusted)) {
      if (!trusted) return { verdict: 'ignored', events };
      this.drain(events);
      events.push({ kind: 'resync', fromSeq: this.next, toSeq: slot.seq });
      this.next = slot.seq;
      this.skipped.clear();
    } else if (slot.seq < this.next) {
      if (this.skipped.delete(slot.seq)) return { verdict: 'late', events };
      return { verdict: 'duplicate', events };
    } else if (this.held.has(slot.seq)) {
      return { verdict: 'duplicate', events };
    }
    this.held.set(slot.seq, { slot, at: now });
    if (slot.item === null) this.remember(slot.seq);
    if (trusted) this.newestCaptureTs = Math.max(this.newestCaptureTs, slot.captureTs);
    this.release(events);
    while (this.held.size > this.opts.maxFrames) this.skipGap(events);
    return { verdict: 'accepted', events };
  }

  /** Give up gaps whose next frame has waited longer than maxWaitMs. */
  poll(now: number): ReorderEvent<T>[] {
    const events: ReorderEvent<T>[] = [];
    while (this.held.size > 0 && now - this.oldestWait() > this.opts.maxWaitMs) this.skipGap(events);
    return events;
  }

  /** Hand on everything held, giving up the gaps between (end of session). */
  drain(events: ReorderEvent<T>[] = []): ReorderEvent<T>[] {
    while (this.held.size > 0) this.skipGap(events);
    return events;
  }

  private isResync(slot: Slot<T>, trusted: boolean): boolean {
    const next = this.next!;
    if (slot.seq >= next + this.opts.resyncGap || slot.seq <= next - this.opts.resyncGap) return true;
    // The count starts again: seq 0 where a late or repeated first frame can no longer be, newer than everything.
    return trusted && slot.seq === 0 && next > this.opts.maxFrames && slot.captureTs > this.newestCaptureTs && !this.skipped.has(0);
  }

  private oldestWait(): number {
    let oldest = Infinity;
    for (const h of this.held.values()) oldest = Math.min(oldest, h.at);
    return oldest;
  }

  private release(events: ReorderEvent<T>[]): void {
    let h = this.held.get(this.next!);
    while (h) {
      this.held.delete(this.next!);
      events.push({ kind: 'slot', slot: h.slot });
      this.next = this.next! + 1;
      h = this.held.get(this.next);
    }
  }

  /** Declare the gap before the lowest held seq lost, then release. */
  private skipGap(events: ReorderEvent<T>[]): void {
    const lowest = Math.min(...this.held.keys());
    if (lowest > this.next!) {
      let from = this.next!;
      for (let s = this.next!; s < lowest; s++) {
        if (this.countedElsewhere.delete(s)) {
          // Counted by the instance before: a slot without a count, not a loss.
          if (s > from) events.push({ kind: 'lost', seqFrom: from, seqTo: s - 1 });
          events.push({ kind: 'slot', slot: { seq: s, captureTs: 0, item: null, refused: 'accounted' } });
          from = s + 1;
          continue;
        }
        this.skipped.add(s);
        this.remember(s);
        if (this.skipped.size > SKIPPED_MEMORY) this.skipped.delete(this.skipped.values().next().value!);
      }
      if (lowest > from) events.push({ kind: 'lost', seqFrom: from, seqTo: lowest - 1 });
      this.next = lowest;
    }
    this.release(events);
  }
}
