import * as hdr from 'hdr-histogram-js';

/** Percentiles of a latency distribution, in ms. */
export interface LatencySummary {
  count: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

const MICROS_PER_MS = 1000;
const round2 = (x: number) => Math.round(x * 100) / 100;

/**
 * An HdrHistogram of durations given in ms. Values are recorded in whole
 * microseconds (the histogram holds integers) with 3 significant digits, so
 * a percentile is exact to 0.1 % of its value, from 1 µs to an hour.
 */
export class LatencyHistogram {
  private readonly h = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000 * MICROS_PER_MS,
    numberOfSignificantValueDigits: 3,
  });

  record(ms: number): void {
    if (!Number.isFinite(ms)) return;
    this.h.recordValue(Math.max(0, Math.round(ms * MICROS_PER_MS)));
  }

  get count(): number {
    return this.h.totalCount;
  }

  percentile(p: number): number {
    return this.h.totalCount === 0 ? 0 : this.h.getValueAtPercentile(p) / MICROS_PER_MS;
  }

  summary(): LatencySummary | null {
    if (this.h.totalCount === 0) return null;
    return {
      count: this.h.totalCount,
      mean: round2(this.h.mean / MICROS_PER_MS),
      p50: round2(this.percentile(50)),
      p95: round2(this.percentile(95)),
      p99: round2(this.percentile(99)),
      max: round2(this.h.maxValue / MICROS_PER_MS),
    };
  }
}
