/**
 * Groups a session's seq slots, handed on in order by the reorder buffer,
 * into fixed units, pure state, no I/O.
 *
 * Units are made of seq slots, not of received frames: batch k covers the
 * `batchFrames` seqs from `base + k * batchFrames`, so under loss a batch
 * still stands for the same second of capture and says how many of its
 * frames were lost. Every `windowFrames / batchFrames`-th batch closes a
 * window. A re-sync or the end of the session closes the open batch and
 * window early.
 */
import type { ReorderEvent } from './reorder-buffer.js';

export interface FrameEntry {
  seq: number;
  captureTs: number;
  format: number;
  width: number;
  height: number;
  image: Buffer;
  /** Monotonic ms at which the server received the frame. */
  receivedAt: number;
}

/** What happened to the frames of a unit's seq range (or, for the ones without a slot, while it was open). */
export interface UnitCounts {
  /** Seqs never received. */
  lost: number;
  /** Frames refused by the checks (their error was sent). */
  rejected: number;
  duplicate: number;
  late: number;
  rateLimited: number;
  /** Frames dropped before analysis because the workers were behind. */
  shed: number;
}

export const zeroCounts = (): UnitCounts => ({ lost: 0, rejected: 0, duplicate: 0, late: 0, rateLimited: 0, shed: 0 });

const addCounts = (a: UnitCounts, b: UnitCounts): UnitCounts => ({
  lost: a.lost + b.lost,
  rejected: a.rejected + b.rejected,
  duplicate: a.duplicate + b.duplicate,
  late: a.late + b.late,
  rateLimited: a.rateLimited + b.rateLimited,
  shed: a.shed + b.shed,
});

/** Where the builder stands between two units: enough to go on elsewhere. */
export interface UnitBuilderState {
  base: number | null;
  windowOpen: boolean;
  windowSeqFrom: number;
  windowCounts: UnitCounts;
}

export interface Unit {
  frames: FrameEntry[];
  /** Seq slots the batch covers; 0 for a unit that only closes a window. */
  slots: number;
  seqFrom: number;
  seqTo: number;
  counts: UnitCounts;
  closesWindow: boolean;
  windowSeqFrom: number;
  windowSeqTo: number;
  /** Counts over the whole window, set when the unit closes it. */
  windowCounts: UnitCounts | null;
  /** Monotonic ms at which the unit was opened, then at which it was cut. */
  createdAt: number;
  /** The builder's state right after this unit was cut. */
  after: UnitBuilderState;
  /**
   * False while the unit is open: its batch is not full yet, and frames are
   * still added to `frames` as they come. Frames go to a worker as they
   * come, so an open unit is already queued; the builder sets the fields
   * above (but `frames`) for good when it cuts the unit.
   */
  complete: boolean;
}

export class UnitBuilder {
  private base: number | null = null;
  /** The batch being filled, from its first slot until it is cut. */
  private openUnit: Unit | null = null;
  private seqTo = 0;
  /** Events without a slot of their own while the batch is open. */
  private counts = zeroCounts();
  private windowOpen = false;
  private windowSeqFrom = 0;
  private windowCounts = zeroCounts();

  constructor(
    private readonly batchFrames: number,
    private readonly windowFrames: number,
  ) {}

  /** The open unit, if a batch has begun: it grows as frames come and is returned by the call that cuts it. */
  get open(): Unit | null {
    return this.openUnit;
  }

  /** Count an event that has no slot of its own (duplicate, late, …) in the open batch. */
  note(kind: keyof UnitCounts, n = 1): void {
    this.counts[kind] += n;
  }

  /** Consume reorder-buffer events in order; returns the units they complete. */
  consume(events: readonly ReorderEvent<FrameEntry>[], now: number): Unit[] {
    const units: Unit[] = [];
    for (const event of events) {
      if (event.kind === 'slot') {
        const unit = this.advance(event.slot.seq, now);
        if (event.slot.item) unit.frames.push(event.slot.item);
        else if (event.slot.refused !== 'accounted') this.counts[event.slot.refused ?? 'rejected']++;
        this.cutIfFull(event.slot.seq, now, units);
      } else if (event.kind === 'lost') {
        for (let seq = event.seqFrom; seq <= event.seqTo; seq++) {
          this.advance(seq, now);
          this.counts.lost++;
          this.cutIfFull(seq, now, units);
        }
      } else {
        const unit = this.flush(now);
        if (unit) units.push(unit);
        this.base = null;
      }
    }
    return units;
  }

  /** Go on from a state another builder (or instance) left. */
  restore(state: UnitBuilderState): void {
    this.base = state.base;
    this.windowOpen = state.windowOpen;
    this.windowSeqFrom = state.windowSeqFrom;
    this.windowCounts = { ...state.windowCounts };
  }

  /**
   * The open unit, cut as it is, without closing the window (the session
   * goes on elsewhere, in the same alignment); null when no batch is open.
   */
  cutPartial(now: number): Unit | null {
    return this.openUnit ? this.cut(false, now) : null;
  }

  /**
   * The open unit, cut as it is, closing the open window (a unit of no
   * slots when no batch is open); null when no window is open.
   */
  flush(now: number): Unit | null {
    if (!this.windowOpen) {
      return null;
    }
    return this.cut(true, now);
  }

  /** Give `seq` its slot in the open unit, opening one if needed. */
  private advance(seq: number, now: number): Unit {
    if (this.base === null) this.base = seq;
    if (!this.windowOpen) {
      this.windowOpen = true;
      this.windowSeqFrom = seq;
    }
    const unit = (this.openUnit ??= this.newUnit(seq, now));
    unit.seqTo = seq;
    unit.windowSeqTo = seq;
    unit.slots++;
    this.seqTo = seq;
    return unit;
  }

  private cutIfFull(seq: number, now: number, units: Unit[]): void {
    const index = seq - this.base! + 1;
    if (index % this.batchFrames === 0) units.push(this.cut(index % this.windowFrames === 0, now));
  }

  private newUnit(seq: number, now: number): Unit {
    return {
      frames: [],
      slots: 0,
      seqFrom: seq,
      seqTo: seq,
      counts: zeroCounts(),
      closesWindow: false,
      windowSeqFrom: this.windowSeqFrom,
      windowSeqTo: seq,
      windowCounts: null,
      createdAt: now,
      after: this.state(),
      complete: false,
    };
  }

  private state(): UnitBuilderState {
    return { base: this.base, windowOpen: this.windowOpen, windowSeqFrom: this.windowSeqFrom, windowCounts: { ...this.windowCounts } };
  }

  private cut(closesWindow: boolean, now: number): Unit {
    const unit = this.openUnit ?? this.newUnit(this.seqTo, now);
    // What was shed while the unit was open is in its own counts already.
    const counts = addCounts(this.counts, unit.counts);
    this.windowCounts = addCounts(this.windowCounts, counts);
    const window = { seqFrom: this.windowSeqFrom, counts: this.windowCounts };
    this.openUnit = null;
    this.counts = zeroCounts();
    if (closesWindow) {
      this.windowOpen = false;
      this.windowCounts = zeroCounts();
    }
    return Object.assign(unit, {
      counts,
      closesWindow,
      windowSeqFrom: window.seqFrom,
      windowSeqTo: unit.seqTo,
      windowCounts: closesWindow ? window.counts : null,
      createdAt: now,
      after: this.state(),
      complete: true,
    });
  }
}
