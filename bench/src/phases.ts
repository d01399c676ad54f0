/**
 * When each session's units begin: a phase of the unit period, drawn at
 * random from a seed so that a run (and its side-by-side run against the
 * reference server) meets the same phases again. Pure code.
 */

/** The phase spread of students who start whenever they like: the whole 1-s unit period. */
export const FULL_SPREAD_S = 1;

/**
 * Uniform numbers in [0, 1) from a 32-bit seed (mulberry32): a run's
 * session phases can be drawn again with the same seed.
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Phases in ms, uniform over the first `spreadS` seconds of the unit period:
 * 1 spreads them over the whole period, as students who start when they like;
 * 0.2 bunches them, as a class that starts together at the teacher's word.
 */
export function phaseDrawer(seed: number, spreadS = FULL_SPREAD_S): () => number {
  if (!(spreadS > 0)) throw new Error('the phase spread is a positive number of seconds');
  const random = seededRandom(seed);
  return () => random() * spreadS * 1000;
}

/** The first time ≥ `now` that is `offsetMs` past `anchor` plus a whole number of periods. */
export function alignedAfter(now: number, anchor: number, offsetMs: number, periodMs: number): number {
  return anchor + offsetMs + Math.ceil((now - anchor - offsetMs) / periodMs) * periodMs;
}
