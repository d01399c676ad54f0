import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FramePool, sizeClass } from '../src/handler/frame-pool.js';

const bytes = (n: number, fill: number) => Buffer.alloc(n, fill);

describe('sizeClass', () => {
  it('is at least 4 KB, holds the frame, and wastes at most a quarter above 4 KB', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 8 * 1024 * 1024 }), (n) => {
        const size = sizeClass(n);
        expect(size).toBeGreaterThanOrEqual(Math.max(n, 4096));
        if (n > 4096) expect(size).toBeLessThanOrEqual(n * 1.25);
        expect(size % 1024).toBe(0);
      }),
    );
    expect([sizeClass(1), sizeClass(4096), sizeClass(4097), sizeClass(29_000), sizeClass(33_000)]).toEqual([4096, 4096, 5120, 32_768, 40_960]);
  });
});

describe('FramePool', () => {
  it('copies the bytes, and reuses a buffer only once it is given back', () => {
    const pool = new FramePool(1024 * 1024);
    const source = bytes(30_000, 7);
    const a = pool.copy(source);
    expect(a.equals(source)).toBe(true);
    const b = pool.copy(bytes(30_000, 8));
    expect(b.buffer).not.toBe(a.buffer);
    pool.release(a);
    expect(pool.freeBytes).toBe(32_768);
    const c = pool.copy(bytes(29_000, 9));
    expect(c.buffer).toBe(a.buffer);
    expect(c.length).toBe(29_000);
    expect(c.equals(bytes(29_000, 9))).toBe(true);
    expect(b.equals(bytes(30_000, 8))).toBe(true);
    expect([pool.reused, pool.allocated, pool.freeBytes]).toEqual([1, 2, 0]);
  });

  it('never puts two frames in one buffer: a second release and foreign buffers are ignored', () => {
    const pool = new FramePool(1024 * 1024);
    const a = pool.copy(bytes(10_000, 1));
    pool.release(a);
    pool.release(a);
    pool.release(Buffer.alloc(10_000));
    expect(pool.strays).toBe(2);
    const x = pool.copy(bytes(10_000, 2));
    const y = pool.copy(bytes(10_000, 3));
    expect(x.buffer).not.toBe(y.buffer);
    expect([x[0], y[0]]).toEqual([2, 3]);
  });

  it('keeps at most maxFreeBytes for reuse', () => {
    const pool = new FramePool(100_000);
    const frames = Array.from({ length: 5 }, (_, i) => pool.copy(bytes(30_000, i)));
    for (const f of frames) pool.release(f);
    expect(pool.freeBytes).toBe(3 * 32_768);
  });

  it('any interleaving of copies and releases keeps every held frame intact', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 70_000 }), fc.nat()), { maxLength: 200 }), (ops) => {
        const pool = new FramePool(256 * 1024);
        const held: Array<{ image: Buffer; fill: number }> = [];
        for (const [take, n, pick] of ops) {
          if (take || held.length === 0) {
            const fill = held.length % 251;
            held.push({ image: pool.copy(bytes(n, fill)), fill });
          } else {
            pool.release(held.splice(pick % held.length, 1)[0].image);
          }
          for (const h of held) expect(h.image.every((v) => v === h.fill)).toBe(true);
        }
        expect(pool.strays).toBe(0);
      }),
      { numRuns: 50 },
    );
  });
});
