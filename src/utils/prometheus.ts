/**
 * Reading Prometheus figures without Prometheus: the text exposition format
 * (what `GET /metrics` answers) parsed into samples, how far a counter moved
 * between two readings, and the quantile of a histogram's buckets as
 * `histogram_quantile` computes it. The dashboard reads its buckets from
 * prom-client, the benchmark and the tests from scraped text; both end in
 * `bucketQuantile`, so their percentiles agree with each other and with
 * Grafana's. Pure: text in, numbers out.
 */

/** One line of the exposition: `name{labels} value [timestamp]`. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  /** Every sample's value by its series as written (`name{labels}`, or `name` without labels). */
  samples: Map<string, number>;
  /** The samples with their labels read, in the order of the text. */
  parsed: Sample[];
  /** `# TYPE` and `# HELP` of each metric family, by family name. */
  types: Map<string, string>;
  help: Map<string, string>;
}

/** `[upper bound, observations ≤ bound]`, ascending, the +Inf bucket last: a cumulative histogram. */
export type Bucket = [le: number, count: number];

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;

/**
 * The format's float is Go's ParseFloat, which takes `Inf`, `Infinity` and
 * `NaN` in any case (prom-client writes an empty gauge's NaN as `Nan`).
 */
function parseValue(text: string, where = text): number {
  const special = /^([+-]?)(inf|infinity|nan)$/i.exec(text);
  if (special) return special[2].toLowerCase() === 'nan' ? NaN : special[1] === '-' ? -Infinity : Infinity;
  const n = Number(text);
  if (text === '' || Number.isNaN(n)) throw new Error(`not a number: ${where}`);
  return n;
}

/**
 * The label block starting at `line[start]` (`{`): its labels, and the index
 * just past its `}`. Values are quoted with `\\`, `\"` and `\n` escaped, so a
 * value may hold spaces, commas and braces.
 */
function parseLabels(line: string, start: number): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = start + 1;
  const fail = (why: string): never => {
    throw new Error(`${why} at column ${i + 1}: ${line}`);
  };
  for (;;) {
    while (line[i] === ' ') i++;
    if (line[i] === '}') return { labels, end: i + 1 };
    const name = LABEL_NAME.exec(line.slice(i))?.[0] ?? fail('expected a label name');
    i += name.length;
    while (line[i] === ' ') i++;
    if (line[i++] !== '=') fail('expected =');
    while (line[i] === ' ') i++;
    if (line[i++] !== '"') fail('expected a quoted label value');
    let value = '';
    for (;;) {
      const c = line[i++];
      if (c === undefined) fail('unterminated label value');
      if (c === '"') break;
      if (c !== '\\') {
        value += c;
        continue;
      }
      const e = line[i++];
      if (e === 'n') value += '\n';
      else if (e === '\\' || e === '"') value += e;
      else fail('unknown escape');
    }
    labels[name] = value;
    while (line[i] === ' ') i++;
    if (line[i] === ',') i++;
    else if (line[i] !== '}') fail('expected , or }');
  }
}

/**
 * The text exposition format, version 0.0.4. A line that is neither a
 * comment nor a sample throws: what we parse is our own server's output,
 * and a silent skip would turn a format change into missing figures.
 */
export function parseExposition(text: string): Exposition {
  const out: Exposition = { samples: new Map(), parsed: [], types: new Map(), help: new Map() };
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const meta = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(line);
      if (meta) (meta[1] === 'TYPE' ? out.types : out.help).set(meta[2], meta[3] ?? '');
      continue;
    }
    const name = NAME.exec(line)?.[0];
    if (!name) throw new Error(`not an exposition line: ${line}`);
    let i = name.length;
    let labels: Record<string, string> = {};
    if (line[i] === '{') ({ labels, end: i } = parseLabels(line, i));
    const series = line.slice(0, i);
    // The value, and a timestamp we do not need; at least one space before them.
    const rest = line.slice(i).trim().split(/\s+/);
    if (!/^\s/.test(line.slice(i)) || rest.length > 2) throw new Error(`not an exposition line: ${line}`);
    const value = parseValue(rest[0], line);
    out.samples.set(series, value);
    out.parsed.push({ name, labels, value });
  }
  return out;
}

/**
 * How far a counter moved from `before` to `after` (0 when it is absent). A
 * counter that went down was reset (its process restarted) and counts from
 * zero, as Prometheus' `increase` takes it.
 */
export function counterIncrease(before: Map<string, number>, after: Map<string, number>, series: string): number {
  const a = after.get(series) ?? 0;
  const b = before.get(series) ?? 0;
  return a >= b ? a - b : a;
}

/**
 * The buckets of histogram `name` in one reading, summed over every label
 * but `le` (as `sum by (le)` does), ascending.
 */
export function histogramBuckets(e: Pick<Exposition, 'parsed'>, name: string): Bucket[] {
  const byLe = new Map<number, number>();
  for (const s of e.parsed) {
    if (s.name !== `${name}_bucket` || s.labels.le === undefined) continue;
    const le = parseValue(s.labels.le);
    byLe.set(le, (byLe.get(le) ?? 0) + s.value);
  }
  return [...byLe.entries()].sort((a, b) => a[0] - b[0]);
}

/** The observations made between two readings of the same buckets. */
export function bucketsIncrease(now: Bucket[], before: Bucket[]): Bucket[] {
  const earlier = new Map(before);
  return now.map(([le, n]) => [le, n - (earlier.get(le) ?? 0)]);
}

/**
 * The q-quantile of the observations in cumulative buckets, interpolated
 * linearly inside the bucket it falls in, as Prometheus' histogram_quantile
 * does (the first bucket's lower bound is 0); null without observations. A
 * quantile that falls in the +Inf bucket is the largest finite bound: the
 * histogram cannot say more.
 */
export function bucketQuantile(buckets: Bucket[], q: number): number | null {
  const total = buckets.length > 0 ? buckets[buckets.length - 1][1] : 0;
  if (total <= 0) return null;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const [le, count] of buckets) {
    // An empty bucket (count = below) cannot hold the rank: skip it rather than divide by zero.
    if (count >= rank && count > below) {
      if (le === Infinity) return lower;
      return lower + ((le - lower) * (rank - below)) / (count - below);
    }
    if (le !== Infinity) lower = le;
    below = count;
  }
  return lower;
}

/** The q-quantile of histogram `name` over the observations made between two readings. */
export function histogramQuantile(before: Pick<Exposition, 'parsed'>, after: Pick<Exposition, 'parsed'>, name: string, q: number): number | null {
  return bucketQuantile(bucketsIncrease(histogramBuckets(after, name), histogramBuckets(before, name)), q);
}
