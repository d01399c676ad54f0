/**
 * Client clock checks, pure state. The offset of a frame is the server's
 * wall clock at arrival minus the frame's captureTs: network delay plus the
 * difference between the two clocks. Its median over recent frames is the
 * session's estimated clock skew (reported, not assumed zero); a frame whose
 * offset is far from it, or whose captureTs runs backwards while its seq
 * runs forwards, has an insane timestamp.
 */

const SAMPLES = 49;

export interface TimestampCheck {
  ok: boolean;
  detail?: string;
}

/** Index of the first element of `sorted` not less than `x`. */
function lowerBound(sorted: number[], x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class ClockCheck {
  /** The recent offsets in arrival order, and the same kept sorted (read on every frame). */
  private readonly offsets: number[] = [];
  private readonly sorted: number[] = [];
  private last: { seq: number; captureTs: number } | null = null;

  constructor(
    /** Largest distance from the estimated offset a captureTs may have. */
    private readonly toleranceMs: number,
    /** How far captureTs may run backwards while seq runs forwards. */
    private readonly reorderToleranceMs = 1000,
  ) {}

  /** Estimated clock skew plus delay in ms (server minus client), or null before any frame. */
  get skewMs(): number | null {
    if (this.sorted.length === 0) return null;
    return this.sorted[Math.floor(this.sorted.length / 2)];
  }

  check(seq: number, captureTs: number, arrivalWallMs: number): TimestampCheck {
    const offset = arrivalWallMs - captureTs;
    const skew = this.skewMs;
    // Every frame feeds the estimate, so a client whose clock was stepped is
    // judged by its new clock once most recent frames agree.
    this.offsets.push(offset);
    this.sorted.splice(lowerBound(this.sorted, offset), 0, offset);
    if (this.offsets.length > SAMPLES) this.sorted.splice(lowerBound(this.sorted, this.offsets.shift()!), 1);
    if (skew !== null && Math.abs(offset - skew) > this.toleranceMs) {
      return { ok: false, detail: `captureTs is ${Math.round(skew - offset)} ms away from the session's clock` };
    }
    const last = this.last;
    // A frame that agrees with the session's clock and is the newest in seq
    // becomes the reference, even if it runs backwards: after a clock step
    // back, later frames are judged against the new clock. A frame behind in
    // seq does not: one re-sent late and stamped again would otherwise make
    // the frames after it look as if they ran backwards.
    if (!last || seq > last.seq) this.last = { seq, captureTs };
    if (last && seq > last.seq && captureTs < last.captureTs - this.reorderToleranceMs) {
      return { ok: false, detail: `captureTs runs ${Math.round(last.captureTs - captureTs)} ms backwards while seq runs forwards` };
    }
    return { ok: true };
  }
}
