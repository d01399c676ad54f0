/**
 * The one byte budget over the frames every session holds (waiting for
 * order, in an open batch, queued for a worker or at one), so memory stays
 * flat whatever clients do. Frames are admitted only while it has room.
 */
/** Whoever holds frames: each session, so shedding can pick the biggest holder. */
export interface Holder {
  heldBytes: number;
}

export class FrameBudget {
  private usedBytes = 0;
  private peakBytes = 0;

  constructor(readonly limitBytes: number) {}

  get used(): number {
    return this.usedBytes;
  }

  get peak(): number {
    return this.peakBytes;
  }

  hasRoom(bytes: number): boolean {
    return this.usedBytes + bytes <= this.limitBytes;
  }

  acquire(holder: Holder, bytes: number): void {
    holder.heldBytes += bytes;
    this.usedBytes += bytes;
    if (this.usedBytes > this.peakBytes) this.peakBytes = this.usedBytes;
  }

  release(holder: Holder, bytes: number): void {
    holder.heldBytes -= bytes;
    this.usedBytes -= bytes;
  }
}
