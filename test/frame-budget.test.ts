import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameBudget } from '../src/handler/frame-budget.js';

describe('FrameBudget', () => {
  it('starts empty', () => {
    const budget = new FrameBudget(1000);
    expect([budget.limitBytes, budget.used, budget.peak]).toEqual([1000, 0, 0]);
  });

  it('has room up to the limit exactly', () => {
    const budget = new FrameBudget(1000);
    budget.acquire(600);
    expect(budget.hasRoom(400)).toBe(true);
    expect(budget.hasRoom(401)).toBe(false);
    budget.acquire(400);
    expect(budget.hasRoom(0)).toBe(true);
    expect(budget.hasRoom(1)).toBe(false);
  });

  it('counts what is acquired and released and keeps the peak', () => {
    const budget = new FrameBudget(1000);
    budget.acquire(300);
    budget.acquire(500);
    budget.release(300);
    expect([budget.used, budget.peak]).toEqual([500, 800]);
    budget.acquire(100);
    expect([budget.used, budget.peak]).toEqual([600, 800]);
    budget.release(600);
    expect([budget.used, budget.peak]).toEqual([0, 800]);
    expect(budget.hasRoom(1000)).toBe(true);
  });

  it('used is the running sum and peak its maximum, for any sequence', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -5000, max: 5000 }), { maxLength: 50 }), (ops) => {
        const budget = new FrameBudget(10_000);
        let used = 0;
        let peak = 0;
        for (const n of ops) {
          if (n >= 0) budget.acquire(n);
          else budget.release(-n);
          used += n;
          peak = Math.max(peak, used);
          expect(budget.hasRoom(10_000 - used)).toBe(true);
          expect(budget.hasRoom(10_000 - used + 1)).toBe(false);
        }
        expect([budget.used, budget.peak]).toEqual([used, peak]);
      }),
    );
  });
});
