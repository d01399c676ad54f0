/**
 * Recycled memory for the frames the server holds.
 *
 * A frame lives about a second in the server, from its arrival until its
 * unit is answered: long enough for V8 to move its buffer to the old
 * generation. At hundreds of frames a second that is megabytes of external
 * memory a second that only a full mark-compact frees, and V8 ran one about
 * twice a second, each stopping the event loop for 5–16 ms
 * (docs/performance.md). Buffers given back here are reused for the next
 * frames instead, so the collector no longer sees them come and go.
 *
 * Sizes are rounded up to a quarter of their power of two (at most 25 %
 * waste; a 29-KB capture takes 32 KB), at least 4 KB. The pool tracks
 * which of its buffers are out and ignores anything else it is handed
 * (counted in `strays`), so a frame released twice never ends up under two
 * new frames. Releasing a frame that is still in use is the one mistake it
 * cannot catch: the frame budget releases at the same places it stops
 * counting a frame's bytes, and test/frame-pool.integration.test.ts checks
 * with real workers that every analysed frame arrives as its client sent it.
 */
export class FramePool {
  private readonly free = new Map<number, ArrayBufferLike[]>();
  private readonly out = new WeakSet<ArrayBufferLike>();
  private freeBytesNow = 0;
  /** Buffers handed back that were not out from this pool (a double release, or not ours). */
  strays = 0;
  /** Copies served from a buffer given back, and copies that needed a new one. */
  reused = 0;
  allocated = 0;

  /** `maxFreeBytes`: memory kept for reuse; buffers given back beyond it are left to the collector. */
  constructor(readonly maxFreeBytes: number) {}

  get freeBytes(): number {
    return this.freeBytesNow;
  }

  /** A copy of `source` in pooled memory. */
  copy(source: Buffer): Buffer {
    const size = sizeClass(source.length);
    const ab = this.free.get(size)?.pop();
    let target: Buffer;
    if (ab) {
      this.freeBytesNow -= size;
      this.reused++;
      target = Buffer.from(ab, 0, source.length);
    } else {
      this.allocated++;
      // allocUnsafeSlow: a fresh, unpooled ArrayBuffer of exactly `size` bytes, not zero-filled.
      target = Buffer.allocUnsafeSlow(size).subarray(0, source.length);
    }
    this.out.add(target.buffer);
    source.copy(target);
    return target;
  }

  /** Give back a buffer from `copy`. The caller must hold no other reference to it that is still used. */
  release(image: Buffer): void {
    const ab = image.buffer;
    if (!this.out.has(ab)) {
      this.strays++;
      return;
    }
    this.out.delete(ab);
    const size = ab.byteLength;
    if (this.freeBytesNow + size > this.maxFreeBytes) return;
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(ab);
    this.freeBytesNow += size;
  }
}

/** Bytes of the buffer a frame of `n` bytes is copied into. */
export function sizeClass(n: number): number {
  if (n <= 4096) return 4096;
  const step = 2 ** Math.floor(Math.log2(n)) / 4;
  return Math.ceil(n / step) * step;
}
