import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameBudget, type Holder } from '../src/handler/frame-budget.js';

const holder = (): Holder => ({ heldBytes: 0 });

describe('FrameBudget', () => {
  it('starts empty', () => {
    const budget = new FrameBudget(1000);
    expect([budget.limitBytes, budget.used, budget.peak]).toEqual([1000, 0, 0]);
  });

  it('has room up to the limit exactly', () => {
    const budget = new FrameBudget(1000);
    const a = holder();
    budget.acquire(a, 600);
    expect(budget.hasRoom(400)).toBe(true);
    expect(budget.hasRoom(401)).toBe(false);
    budget.acquire(a, 400);
    expect(budget.hasRoom(0)).toBe(true);
    expect(budget.hasRoom(1)).toBe(false);
  });

  it('counts what is acquired and released, in total and per holder, and keeps the peak', () => {
    const budget = new FrameBudget(1000);
    const a = holder();
    const b = holder();
    budget.acquire(a, 300);
    budget.acquire(b, 500);
    budget.release(a, 300);
    expect([budget.used, budget.peak, a.heldBytes, b.heldBytes]).toEqual([500, 800, 0, 500]);
    budget.acquire(a, 100);
    expect([budget.used, budget.peak, a.heldBytes, b.heldBytes]).toEqual([600, 800, 100, 500]);
    budget.release(b, 500);
    budget.release(a, 100);
    expect([budget.used, budget.peak, a.heldBytes, b.heldBytes]).toEqual([0, 800, 0, 0]);
    expect(budget.hasRoom(1000)).toBe(true);
  });

  it('used is the running sum, peak its maximum and each holder its own sum, for any sequence', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(2), fc.integer({ min: -5000, max: 5000 })), { maxLength: 50 }), (ops) => {
        const budget = new FrameBudget(10_000);
        const holders = [holder(), holder(), holder()];
        const sums = [0, 0, 0];
        let used = 0;
        let peak = 0;
        for (const [h, n] of ops) {
          if (n >= 0) budget.acquire(holders[h], n);
          else budget.release(holders[h], -n);
          sums[h] += n;
          used += n;
          peak = Math.max(peak, used);
          expect(budget.hasRoom(10_000 - used)).toBe(true);
          expect(budget.hasRoom(10_000 - used + 1)).toBe(false);
        }
        expect([budget.used, budget.peak]).toEqual([used, peak]);
        expect(holders.map((x) => x.heldBytes)).toEqual(sums);
      }),
    );
  });
});
