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

export class ClockCheck {
  private readonly offsets: number[] = [];
  private last: { seq: number; captureTs: number } | null = null;

  constructor(
    /** Largest distance from the estimated offset a captureTs may have. */
    private readonly toleranceMs: number,
    /** How far captureTs may run backwards while seq runs forwards. */
    private readonly reorderToleranceMs = 1000,
  ) {}

  /** Estimated clock skew plus delay in ms (server minus client), or null before any frame. */
  get skewMs(): number | null {
    if (this.offsets.length === 0) return null;
    const sorted = [...this.offsets].sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)];
  }

  check(seq: number, captureTs: number, arrivalWallMs: number): TimestampCheck {
    const offset = arrivalWallMs - captureTs;
    const skew = this.skewMs;
    // Every frame feeds the estimate, so a client whose clock was stepped is
    // judged by its new clock once most recent frames agree.
    this.offsets.push(offset);
    if (this.offsets.length > SAMPLES) this.offsets.shift();
    if (skew !== null && Math.abs(offset - skew) > this.toleranceMs) {
      return { ok: false, detail: `captureTs is ${Math.round(skew - offset)} ms away from the session's clock` };
    }
    const last = this.last;
    // A frame that agrees with the session's clock becomes the reference,
    // even if it runs backwards: after a clock step back, later frames are
    // judged against the new clock.
    this.last = { seq, captureTs };
    if (last && seq > last.seq && captureTs < last.captureTs - this.reorderToleranceMs) {
      return { ok: false, detail: `captureTs runs ${Math.round(last.captureTs - captureTs)} ms backwards while seq runs forwards` };
    }
    return { ok: true };
  }
}
