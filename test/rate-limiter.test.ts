import { describe, expect, it } from 'vitest';
import { RateLimiter, WindowCounter } from '../src/handler/rate-limiter.js';

/** take() at each time, as a string of Y (taken) and n (refused). */
const takes = (limiter: RateLimiter, times: number[]) => times.map((t) => (limiter.take(t) ? 'Y' : 'n')).join('');

describe('RateLimiter', () => {
  it('allows a full burst at once, then nothing until a token is earned', () => {
    const limiter = new RateLimiter(5, 3);
    expect(takes(limiter, [0, 0, 0, 0])).toBe('YYYn');
    expect(takes(limiter, [199])).toBe('n');
    // 200 ms at 5/s earn one token; the refused take at 199 kept its fraction.
    expect(takes(limiter, [200, 200])).toBe('Yn');
  });

  it('lets a steady stream at the rate through forever', () => {
    const limiter = new RateLimiter(5, 1);
    const times = Array.from({ length: 100 }, (_, i) => 1000 + 200 * i);
    expect(takes(limiter, times)).toBe('Y'.repeat(100));
  });

  it('refuses every other frame of a stream at twice the rate, once the burst is spent', () => {
    const limiter = new RateLimiter(5, 2);
    const times = Array.from({ length: 10 }, (_, i) => 100 * i);
    // Burst of 2 at 0 and 100 (plus 0.5 earned), then one token per 200 ms.
    expect(takes(limiter, times)).toBe('YYYnYnYnYn');
  });

  it('never holds more than the burst, however long it was idle', () => {
    const limiter = new RateLimiter(5, 3);
    expect(takes(limiter, [0])).toBe('Y');
    expect(takes(limiter, [60_000, 60_000, 60_000, 60_000])).toBe('YYYn');
  });

  it('catches a late timer up within the burst', () => {
    const limiter = new RateLimiter(5, 3);
    // A timer stalls for 600 ms and then fires three frames at once.
    expect(takes(limiter, [0, 200, 400, 1000, 1000, 1000, 1000])).toBe('YYYYYYn');
  });

  it('setRate changes the rate from then on', () => {
    const limiter = new RateLimiter(5, 1);
    expect(limiter.rate).toBe(5);
    expect(takes(limiter, [0, 100])).toBe('Yn');
    limiter.setRate(10);
    expect(limiter.rate).toBe(10);
    expect(takes(limiter, [200, 300, 350, 400])).toBe('YYnY');
    limiter.setRate(1);
    expect(takes(limiter, [500, 1399, 1400])).toBe('nnY');
  });
});

describe('WindowCounter', () => {
  it('counts the events of the last windowMs, both ends included', () => {
    const counter = new WindowCounter(1000);
    expect([0, 100, 500, 1000].map((t) => counter.add(t))).toEqual([1, 2, 3, 4]);
    expect(counter.add(1001)).toBe(4); // 0 fell out
    expect(counter.add(1600)).toBe(3); // 100 and 500 fell out
    expect(counter.add(5000)).toBe(1);
  });
});
