/** Smallest circular distance between any two phases (ms) of a `periodMs` cycle. */
export function minGap(phases: number[], periodMs: number): number {
  const s = [...phases].map((p) => ((p % periodMs) + periodMs) % periodMs).sort((a, b) => a - b);
  let gap = s[0] + periodMs - s[s.length - 1];
  for (let i = 1; i < s.length; i++) gap = Math.min(gap, s[i] - s[i - 1]);
  return gap;
}
