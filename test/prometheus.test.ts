/**
 * src/utils/prometheus.ts: the one reader of Prometheus figures that the
 * dashboard, the benchmark and the metrics tests share. Golden cases for the
 * quantile and the parser, and a round trip through prom-client, the library
 * that writes our /metrics.
 */
import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { LATENCY_BUCKETS_SECONDS } from '../src/server/metrics.js';
import {
  bucketQuantile,
  bucketsIncrease,
  counterIncrease,
  histogramBuckets,
  histogramQuantile,
  parseExposition,
  type Bucket,
} from '../src/utils/prometheus.js';

describe('bucketQuantile', () => {
  // 10 observations ≤ 0.1 s, 10 more ≤ 0.2 s, none above.
  const buckets: Bucket[] = [
    [0.05, 0],
    [0.1, 10],
    [0.2, 20],
    [Infinity, 20],
  ];

  it('interpolates linearly inside the bucket the rank falls in, as histogram_quantile does', () => {
    expect(bucketQuantile(buckets, 0.5)).toBeCloseTo(0.1, 12);
    expect(bucketQuantile(buckets, 0.75)).toBeCloseTo(0.15, 12);
    // In the first non-empty bucket, from the previous bound.
    expect(bucketQuantile(buckets, 0.25)).toBeCloseTo(0.075, 12);
    expect(bucketQuantile(buckets, 1)).toBeCloseTo(0.2, 12);
    // The first bucket's lower bound is 0.
    expect(bucketQuantile([[1, 4], [Infinity, 4]], 0.5)).toBeCloseTo(0.5, 12);
  });

  it('answers the largest finite bound for a rank in the +Inf bucket', () => {
    expect(bucketQuantile([[0.1, 1], [Infinity, 4]], 0.99)).toBe(0.1);
    expect(bucketQuantile([[0.1, 1], [0.5, 2], [Infinity, 4]], 0.9)).toBe(0.5);
  });

  it('is null without observations', () => {
    expect(bucketQuantile([[0.1, 0], [Infinity, 0]], 0.5)).toBeNull();
    expect(bucketQuantile([], 0.5)).toBeNull();
  });
});

describe('parseExposition', () => {
  it('reads labels with escaped quotes, backslashes, newlines, and braces and commas inside values', () => {
    const text = [
      '# HELP odd_total A counter with awkward labels.',
      '# TYPE odd_total counter',
      'odd_total{path="C:\\\\dir\\\\",msg="say \\"hi\\"\\nbye",set="{a, b}=c"} 3',
      'odd_total{ path = "plain" , } 4 1700000000000',
      'bare_gauge -1.5e-3',
      'inf_gauge{le="+Inf"} +Inf',
      // Go's ParseFloat, which Prometheus reads values with, ignores case; prom-client writes `Nan`.
      'nan_gauge Nan',
      'minus_inf -inf',
    ].join('\n');
    const e = parseExposition(text);
    expect(e.types.get('odd_total')).toBe('counter');
    expect(e.help.get('odd_total')).toBe('A counter with awkward labels.');
    expect(e.parsed).toEqual([
      { name: 'odd_total', labels: { path: 'C:\\dir\\', msg: 'say "hi"\nbye', set: '{a, b}=c' }, value: 3 },
      { name: 'odd_total', labels: { path: 'plain' }, value: 4 },
      { name: 'bare_gauge', labels: {}, value: -0.0015 },
      { name: 'inf_gauge', labels: { le: '+Inf' }, value: Infinity },
      { name: 'nan_gauge', labels: {}, value: NaN },
      { name: 'minus_inf', labels: {}, value: -Infinity },
    ]);
    // Series are keyed as written, so a test can look one up by its text.
    expect(e.samples.get('odd_total{path="C:\\\\dir\\\\",msg="say \\"hi\\"\\nbye",set="{a, b}=c"}')).toBe(3);
    expect(e.samples.get('bare_gauge')).toBe(-0.0015);
  });

  it('throws on a line that is not a sample, naming it', () => {
    for (const line of ['no_value', 'x{a="unterminated} 1', 'x{a=b} 1', 'x{a="1"}2', 'x 1 2 3', 'x one', '{a="1"} 1', 'x{a="\\t"} 1']) {
      expect(() => parseExposition(line), line).toThrow(line);
    }
  });
});

describe('counters and histograms across two scrapes', () => {
  const scrape1 = [
    'jipjung_units_total 100',
    'jipjung_worker_cpu_seconds_total{slot="0"} 50',
    'lat_seconds_bucket{slot="0",le="0.1"} 10',
    'lat_seconds_bucket{slot="0",le="0.2"} 10',
    'lat_seconds_bucket{slot="0",le="+Inf"} 10',
    'lat_seconds_bucket{slot="1",le="0.1"} 0',
    'lat_seconds_bucket{slot="1",le="0.2"} 0',
    'lat_seconds_bucket{slot="1",le="+Inf"} 0',
  ].join('\n');
  const scrape2 = [
    'jipjung_units_total 130',
    // The worker was replaced: its counter started again from 0.
    'jipjung_worker_cpu_seconds_total{slot="0"} 7',
    'jipjung_frames_dropped_total{reason="shed"} 5',
    'lat_seconds_bucket{slot="0",le="0.1"} 12',
    'lat_seconds_bucket{slot="0",le="0.2"} 20',
    'lat_seconds_bucket{slot="0",le="+Inf"} 22',
    'lat_seconds_bucket{slot="1",le="0.1"} 2',
    'lat_seconds_bucket{slot="1",le="0.2"} 10',
    'lat_seconds_bucket{slot="1",le="+Inf"} 10',
  ].join('\n');
  const [a, b] = [parseExposition(scrape1), parseExposition(scrape2)];

  it('counts what a counter moved, from 0 when it was absent, and from its reset when it went down', () => {
    expect(counterIncrease(a.samples, b.samples, 'jipjung_units_total')).toBe(30);
    expect(counterIncrease(a.samples, b.samples, 'jipjung_frames_dropped_total{reason="shed"}')).toBe(5);
    expect(counterIncrease(a.samples, b.samples, 'jipjung_worker_cpu_seconds_total{slot="0"}')).toBe(7);
    expect(counterIncrease(a.samples, b.samples, 'never_seen_total')).toBe(0);
  });

  it("takes a histogram's quantile over the observations between them, summed over its other labels", () => {
    expect(histogramBuckets(b, 'lat_seconds')).toEqual([
      [0.1, 14],
      [0.2, 30],
      [Infinity, 32],
    ]);
    // Between the scrapes: 4 ≤ 0.1, 16 more ≤ 0.2, 2 above; 22 in all.
    expect(bucketsIncrease(histogramBuckets(b, 'lat_seconds'), histogramBuckets(a, 'lat_seconds'))).toEqual([
      [0.1, 4],
      [0.2, 20],
      [Infinity, 22],
    ]);
    // Rank 11 is the 7th of the 16 in (0.1, 0.2].
    expect(histogramQuantile(a, b, 'lat_seconds', 0.5)).toBeCloseTo(0.1 + (0.1 * (11 - 4)) / 16, 12);
    expect(histogramQuantile(a, b, 'lat_seconds', 0.95)).toBe(0.2);
    expect(histogramQuantile(b, b, 'lat_seconds', 0.5)).toBeNull();
    expect(histogramQuantile(a, b, 'absent_seconds', 0.5)).toBeNull();
  });
});

describe('a round trip through prom-client', () => {
  it('parses what prom-client writes back into the same labels, values and buckets', async () => {
    const registry = new Registry();
    const counter = new Counter({ name: 'rt_total', help: 'Round trip.', labelNames: ['code'], registers: [registry] });
    const histogram = new Histogram({ name: 'rt_seconds', help: 'Round trip.', buckets: LATENCY_BUCKETS_SECONDS, registers: [registry] });
    const awkward = 'a "quoted" \\ value\nwith a newline';
    counter.inc({ code: awkward }, 3);
    counter.inc({ code: 'plain' }, 2);
    const observed = [0.004, 0.02, 0.02, 0.06, 0.12, 0.4, 0.9, 20];
    for (const v of observed) histogram.observe(v);

    const e = parseExposition(await registry.metrics());
    expect(e.types.get('rt_total')).toBe('counter');
    expect(e.types.get('rt_seconds')).toBe('histogram');
    expect(e.parsed.filter((s) => s.name === 'rt_total')).toEqual([
      { name: 'rt_total', labels: { code: awkward }, value: 3 },
      { name: 'rt_total', labels: { code: 'plain' }, value: 2 },
    ]);
    // The buckets parsed from the text are those prom-client holds.
    const held: Bucket[] = (await histogram.get()).values
      .filter((v) => v.metricName === 'rt_seconds_bucket')
      .map((v): Bucket => [v.labels.le === '+Inf' ? Infinity : Number(v.labels.le), v.value])
      .sort((x, y) => x[0] - y[0]);
    const parsed = histogramBuckets(e, 'rt_seconds');
    expect(parsed).toEqual(held);
    expect(parsed.length).toBe(LATENCY_BUCKETS_SECONDS.length + 1);
    expect(e.samples.get('rt_seconds_count')).toBe(observed.length);
    // 8 observations: the median (rank 4) is the one in (0.05, 0.075], so that bucket's upper bound;
    // the 99th percentile is in +Inf, above 10 s: the largest finite bound.
    expect(bucketQuantile(parsed, 0.5)).toBeCloseTo(0.075, 12);
    expect(bucketQuantile(parsed, 0.99)).toBe(10);
  });
});
