import { describe, expect, it } from 'vitest';
import { UnitAlignment } from '../src/handler/unit-alignment.js';
import { minGap as minGapIn } from './helpers/phases.js';
import { seededRandom } from '../bench/src/phases.js';

const PERIOD = 1000;
const minGap = (phases: number[]) => minGapIn(phases, PERIOD);

/**
 * Sessions that obey: each completes a unit once a period at its phase, and
 * an align delays every later unit by delayMs. Returns the phases and the
 * aligns sent in each period.
 */
function simulate(start: number[], periods: number, jitter = 0, seed = 7) {
  const alignment = new UnitAlignment<number>(PERIOD);
  const random = seededRandom(seed);
  const phases = [...start];
  const alignsPerPeriod: number[] = [];
  const aligned = phases.map(() => 0);
  for (let k = 0; k < periods; k++) {
    const events = phases.map((p, i) => ({ i, at: k * PERIOD + p + (random() - 0.5) * 2 * jitter })).sort((a, b) => a.at - b.at);
    let n = 0;
    for (const { i, at } of events) {
      const delay = alignment.observe(i, at);
      if (delay === null) continue;
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThan(PERIOD);
      phases[i] += delay;
      aligned[i]++;
      n++;
    }
    alignsPerPeriod.push(n);
  }
  return { phases, alignsPerPeriod, aligned };
}

describe('UnitAlignment', () => {
  it('spreads sessions that started at random phases, and then leaves them alone', () => {
    for (const n of [12, 57, 69, 150]) {
      const random = seededRandom(n);
      const start = Array.from({ length: n }, () => random() * PERIOD);
      const spacing = PERIOD / n;
      expect(minGap(start)).toBeLessThan(spacing / 5);
      const { phases, alignsPerPeriod, aligned } = simulate(start, 30, 0.5);
      expect(minGap(phases)).toBeGreaterThanOrEqual(spacing / 3);
      expect(alignsPerPeriod.slice(-10).reduce((a, b) => a + b)).toBeLessThanOrEqual(n / 50);
      // Few sessions move, and none more than a few times.
      expect(aligned.filter((a) => a > 0).length).toBeLessThan(n * 0.75);
      expect(Math.max(...aligned)).toBeLessThanOrEqual(3);
    }
  });

  it('settles although each unit is cut a few ms early or late, moving no session again and again', () => {
    for (const n of [58, 87, 150]) {
      const random = seededRandom(n + 1);
      const start = Array.from({ length: n }, () => random() * PERIOD);
      const { phases, alignsPerPeriod, aligned } = simulate(start, 60, 5);
      const late = alignsPerPeriod.slice(30).reduce((a, b) => a + b);
      // Fewer than one session in five moves once more in the last 30 periods, however small the spacing
      // (each move pauses one session's capture for less than a period: well under 0.1 % of the frames).
      expect(late).toBeLessThan(n / 5);
      expect(Math.max(...aligned)).toBeLessThanOrEqual(4);
      expect(minGap(phases)).toBeGreaterThan(0);
    }
  });

  it('aligns nobody once the even spacing is below a few ms, closer than units can be placed', () => {
    const random = seededRandom(3);
    const { alignsPerPeriod } = simulate(Array.from({ length: 300 }, () => random() * 20), 10);
    expect(alignsPerPeriod.every((a) => a === 0)).toBe(true);
    expect(simulate(Array.from({ length: 200 }, () => random() * 20), 10).alignsPerPeriod.some((a) => a > 0)).toBe(true);
  });

  it('leaves sessions that are already spread where they are', () => {
    const n = 40;
    const { alignsPerPeriod } = simulate(Array.from({ length: n }, (_, i) => (i * PERIOD) / n), 10, 2);
    expect(alignsPerPeriod.every((a) => a === 0)).toBe(true);
  });

  it('moves a crowded session to the middle of the widest gap between the others', () => {
    const alignment = new UnitAlignment<string>(PERIOD);
    const period = (k: number, units: Array<[string, number]>) => units.map(([key, phase]) => alignment.observe(key, k * PERIOD + phase));
    // Judged from their second unit on: a, b and c are spread, and d's first unit is only seen.
    expect(period(5, [['a', 0], ['b', 250], ['c', 500]])).toEqual([null, null, null]);
    expect(period(6, [['a', 0], ['b', 250], ['c', 500], ['d', 505]])).toEqual([null, null, null, null]);
    // c, 5 ms from d, goes to the middle of the gap from d (505) to a (1000): 752.5.
    expect(period(7, [['a', 0], ['b', 250], ['c', 500], ['d', 505]])).toEqual([null, null, 253, null]);
    expect(period(8, [['a', 0], ['b', 250], ['c', 753], ['d', 505]])).toEqual([null, null, null, null]);
    expect(alignment.size).toBe(4);
  });

  it('asks a session that does not follow again only after a quiet time', () => {
    const alignment = new UnitAlignment<string>(PERIOD);
    const asked: Record<string, number[]> = { a: [], b: [] };
    for (let k = 0; k < 60; k++) {
      for (const [key, phase] of [['a', 300], ['b', 301]] as const) if (alignment.observe(key, k * PERIOD + phase) !== null) asked[key].push(k);
    }
    expect(asked.a.length + asked.b.length).toBeGreaterThan(2);
    // Asked again after 5 periods at least, then after twice as long each time.
    for (const ks of Object.values(asked)) {
      const gaps = ks.slice(1).map((k, i) => k - ks[i]);
      gaps.forEach((g, i) => expect(g).toBeGreaterThanOrEqual(5 * 2 ** i));
    }
  });

  it('forgets sessions that stopped, and alone asks nothing', () => {
    const alignment = new UnitAlignment<string>(PERIOD);
    expect(alignment.observe('a', 1000)).toBeNull();
    expect(alignment.observe('a', 2000)).toBeNull();
    alignment.observe('b', 2500);
    // b stops; four periods later a's phase-mate has gone stale and a new session next to it is not crowded.
    expect(alignment.observe('a', 6000)).toBeNull();
    expect(alignment.size).toBe(1);
    alignment.observe('c', 6500);
    alignment.forget('c');
    expect(alignment.observe('a', 7000)).toBeNull();
    expect(alignment.size).toBe(1);
  });
});
