/**
 * Groups a session's accepted frames, in seq order, into units of
 * `batchFrames` frames; every `windowFrames / batchFrames`-th unit closes a
 * window. Pure state, no I/O.
 */

export interface FrameEntry {
  seq: number;
  captureTs: number;
  format: number;
  image: Buffer;
  /** Monotonic ms at which the server received the frame. */
  receivedAt: number;
}

export interface Unit {
  frames: FrameEntry[];
  /** seq range the unit covers (frames may be fewer after loss or shedding). */
  seqFrom: number;
  seqTo: number;
  closesWindow: boolean;
  /** Frames of this unit dropped before analysis (load shedding). */
  shed: number;
  /** seq range of the window this unit belongs to, as far as it has come. */
  windowSeqFrom: number;
  windowSeqTo: number;
  /** Monotonic ms at which the unit was cut. */
  createdAt: number;
}

export class UnitBuilder {
  private frames: FrameEntry[] = [];
  private framesInWindow = 0;
  private windowSeqFrom: number | null = null;
  private windowSeqTo = 0;

  constructor(
    private readonly batchFrames: number,
    private readonly windowFrames: number,
  ) {}

  /** Add a frame; returns the unit it completes, if any. */
  push(frame: FrameEntry, now: number): Unit | null {
    if (this.windowSeqFrom === null) this.windowSeqFrom = frame.seq;
    this.windowSeqTo = frame.seq;
    this.frames.push(frame);
    this.framesInWindow++;
    if (this.frames.length < this.batchFrames) return null;
    return this.cut(this.framesInWindow >= this.windowFrames, now);
  }

  /** Frames held in the open batch. */
  get held(): number {
    return this.frames.length;
  }

  /**
   * The unit of whatever is held, closing the open window; null when no
   * window is open. Used at the end of a session.
   */
  flush(now: number): Unit | null {
    if (this.windowSeqFrom === null) return null;
    return this.cut(true, now);
  }

  private cut(closesWindow: boolean, now: number): Unit {
    const frames = this.frames;
    const windowSeqFrom = this.windowSeqFrom!;
    const unit: Unit = {
      frames,
      seqFrom: frames.length > 0 ? frames[0].seq : this.windowSeqTo,
      seqTo: frames.length > 0 ? frames[frames.length - 1].seq : this.windowSeqTo,
      closesWindow,
      shed: 0,
      windowSeqFrom,
      windowSeqTo: this.windowSeqTo,
      createdAt: now,
    };
    this.frames = [];
    if (closesWindow) {
      this.framesInWindow = 0;
      this.windowSeqFrom = null;
    }
    return unit;
  }
}
