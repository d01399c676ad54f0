/**
 * A seeded random source (mulberry32), the same as bench/src/load-generator.ts
 * uses: the same seed gives the same numbers there and here. Kept apart
 * because the bench imports the built server (dist/), and the unit tier runs
 * without a build.
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
