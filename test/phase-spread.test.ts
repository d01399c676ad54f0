import { describe, expect, it } from 'vitest';
import { phaseDrawer, seededRandom } from '../bench/src/phases.js';

const draw = (seed: number, spreadS?: number, n = 20_000) => {
  const next = phaseDrawer(seed, spreadS);
  return Array.from({ length: n }, () => next());
};

describe('bench phase spread', () => {
  it('draws a class that starts together within the first 0.2 s of the unit period, uniformly', () => {
    const phases = draw(1, 0.2);
    expect(Math.min(...phases)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...phases)).toBeLessThan(200);
    // Filled, not merely bounded: the last tenth of the spread is as full as the first.
    const tenths = Array.from({ length: 10 }, (_, k) => phases.filter((x) => x >= k * 20 && x < (k + 1) * 20).length);
    for (const n of tenths) expect(Math.abs(n - 2000)).toBeLessThan(150);
  });

  it('spreads over the whole 1-s period by default: each phase is the seed\'s uniform draw times the period', () => {
    const random = seededRandom(7);
    const before = Array.from({ length: 1000 }, () => random() * 1000);
    expect(draw(7, undefined, 1000)).toEqual(before);
    expect(draw(7, 1, 1000)).toEqual(before);
    expect(Math.max(...draw(7))).toBeGreaterThan(990);
  });

  it('gives the same phases for the same seed, whatever the spread, scaled', () => {
    const wide = draw(3, 1, 100);
    const narrow = draw(3, 0.2, 100);
    narrow.forEach((x, i) => expect(x).toBeCloseTo(wide[i] * 0.2, 9));
    expect(draw(4, 0.2, 100)).not.toEqual(narrow);
  });

  it('refuses a spread that is not a positive number of seconds', () => {
    for (const bad of [0, -0.5, Number.NaN]) expect(() => phaseDrawer(1, bad)).toThrow(/positive/);
  });
});
