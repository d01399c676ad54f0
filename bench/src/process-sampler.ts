/**
 * CPU and resident memory of the server, its workers and the generator
 * itself, sampled from /proc once a second over a measurement window.
 */
import { readProcessStats, type ProcessStats } from '../../dist/utils/process-stats.js';

export interface ProcessUsage {
  pid: number;
  /** CPU time over the window / the window, in % of one core. */
  cpuPercent: number;
  rssStartMB: number;
  rssEndMB: number;
  rssMaxMB: number;
}

export interface Usage {
  server: ProcessUsage | null;
  workers: ProcessUsage[];
  generator: ProcessUsage | null;
  /** Server RSS over the window: [seconds from its start, MB]. */
  serverRss: Array<[number, number]>;
  /** Least-squares slope of the server's RSS, MB per minute. */
  serverRssSlopeMBPerMin: number | null;
}

const MB = 1024 * 1024;
const r1 = (x: number) => Math.round(x * 10) / 10;

interface Track {
  first: ProcessStats;
  firstAt: number;
  last: ProcessStats;
  lastAt: number;
  maxRss: number;
}

/** Least-squares slope of y over x. */
export function slope(points: Array<[number, number]>): number | null {
  if (points.length < 2) return null;
  const n = points.length;
  const mx = points.reduce((a, p) => a + p[0], 0) / n;
  const my = points.reduce((a, p) => a + p[1], 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? null : num / den;
}

export class ProcessSampler {
  private readonly tracks = new Map<number, Track>();
  private readonly rss: Array<[number, number]> = [];
  private timer: NodeJS.Timeout | null = null;
  private startedAt = 0;

  constructor(
    private readonly serverPid: number,
    private readonly workerPids: () => number[],
    private readonly intervalMs = 1000,
  ) {}

  start(): void {
    this.startedAt = Date.now();
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
  }

  stop(): Usage {
    if (this.timer) clearInterval(this.timer);
    this.sample();
    const usage = (pid: number): ProcessUsage | null => {
      const t = this.tracks.get(pid);
      if (!t) return null;
      const seconds = (t.lastAt - t.firstAt) / 1000;
      return {
        pid,
        cpuPercent: seconds > 0 ? r1(((t.last.cpuSeconds - t.first.cpuSeconds) / seconds) * 100) : 0,
        rssStartMB: r1(t.first.rssBytes / MB),
        rssEndMB: r1(t.last.rssBytes / MB),
        rssMaxMB: r1(t.maxRss / MB),
      };
    };
    const workers = [...this.tracks.keys()].filter((p) => p !== this.serverPid && p !== process.pid);
    const s = slope(this.rss);
    return {
      server: usage(this.serverPid),
      workers: workers.map(usage).filter((u): u is ProcessUsage => u !== null),
      generator: usage(process.pid),
      serverRss: this.rss,
      serverRssSlopeMBPerMin: s === null ? null : Math.round(s * 60 * 100) / 100,
    };
  }

  private sample(): void {
    const now = Date.now();
    for (const pid of [this.serverPid, process.pid, ...this.workerPids()]) {
      const s = readProcessStats(pid);
      if (!s) continue;
      const t = this.tracks.get(pid);
      if (!t) this.tracks.set(pid, { first: s, firstAt: now, last: s, lastAt: now, maxRss: s.rssBytes });
      else {
        t.last = s;
        t.lastAt = now;
        t.maxRss = Math.max(t.maxRss, s.rssBytes);
      }
      if (pid === this.serverPid) this.rss.push([r1((now - this.startedAt) / 1000), r1(s.rssBytes / MB)]);
    }
  }
}
