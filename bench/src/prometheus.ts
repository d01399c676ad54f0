/** Reading the server's `/metrics` (Prometheus text): values by series, and quantiles of histograms between two scrapes. Pure. */

/** Prometheus text → value by series (`name{labels}`). */
export function parsePrometheus(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    const v = Number(line.slice(i + 1));
    if (Number.isFinite(v)) out.set(line.slice(0, i), v);
  }
  return out;
}

/** Quantile of the observations between two scrapes of a Prometheus histogram, interpolated inside its bucket. */
export function histogramQuantile(before: Map<string, number>, after: Map<string, number>, name: string, q: number): number | null {
  const buckets: Array<[number, number]> = [];
  for (const [key, v] of after) {
    const m = key.startsWith(`${name}_bucket{`) ? /le="([^"]+)"/.exec(key) : null;
    if (!m) continue;
    buckets.push([m[1] === '+Inf' ? Infinity : Number(m[1]), v - (before.get(key) ?? 0)]);
  }
  buckets.sort((a, b) => a[0] - b[0]);
  const total = buckets.at(-1)?.[1] ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (le === Infinity) return prevLe;
      return prevLe + ((le - prevLe) * (rank - prevCount)) / Math.max(1e-9, count - prevCount);
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}
