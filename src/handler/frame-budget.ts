import { FramePool } from './frame-pool.js';

/** Memory kept for reuse once frames are freed (the pool's cap): about a second of 100 sessions' captures. */
const POOL_MAX_FREE_BYTES = 32 * 1024 * 1024;

/** Whoever holds frames: each session, so shedding can pick the biggest holder. */
export interface Holder {
  heldBytes: number;
}

/**
 * The one byte budget over the frames every session holds (waiting for
 * order, in an open batch, queued for a worker or at one), so memory stays
 * flat whatever clients do. Frames are admitted only while it has room,
 * into memory recycled through a FramePool.
 */
export class FrameBudget {
  private usedBytes = 0;
  private peakBytes = 0;

  readonly pool: FramePool;

  constructor(readonly limitBytes: number) {
    this.pool = new FramePool(Math.min(POOL_MAX_FREE_BYTES, Math.floor(limitBytes / 4)));
  }

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

  /**
   * Take a frame in: the server's own copy (the socket's receive buffer
   * must not be pinned by a frame waiting in a queue), counted for `holder`.
   */
  admit(holder: Holder, source: Buffer): Buffer {
    const own = this.pool.copy(source);
    this.acquire(holder, own.length);
    return own;
  }

  /** Frames from `admit` that nothing uses any more: out of the budget, their memory back to the pool. */
  free(holder: Holder, images: Iterable<Buffer>): void {
    for (const image of images) {
      this.release(holder, image.length);
      this.pool.release(image);
    }
  }
}
