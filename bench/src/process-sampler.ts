/**
 * CPU and resident memory of the server, its workers and the generator
 * itself, sampled from /proc once a second over a measurement window.
 */
import fs from 'node:fs';
import os from 'node:os';
import { readProcessStats, type ProcessStats } from '../../dist/utils/process-stats.js';

export interface ProcessUsage {
  pid: number;
  /** CPU time over the window / the window, in % of one core. */
  cpuPercent: number;
  rssStartMB: number;
  rssEndMB: number;
  rssMaxMB: number;
}

/** Busy and total CPU time of the whole machine, from the first line of /proc/stat (clock ticks). */
export function readMachineCpu(text?: string): { busy: number; total: number } | null {
  try {
    const line = (text ?? fs.readFileSync('/proc/stat', 'utf8')).split('\n')[0];
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already in user)
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = v[3] + (v[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}

export interface Usage {
  server: ProcessUsage | null;
  workers: ProcessUsage[];
  generator: ProcessUsage | null;
  /** Server RSS over the window: [seconds from its start, MB]. */
  serverRss: Array<[number, number]>;
  /** Least-squares slope of the server's RSS, MB per minute. */
  serverRssSlopeMBPerMin: number | null;
  /** The whole machine's busy CPU over the window, in % of one core (200 = both cores of a 2-core machine). */
  machineCpuPercent: number | null;
  /** Busy CPU of every other process on the machine (machine − server − workers − generator), % of one core. */
  othersCpuPercent: number | null;
  /** 1-minute load average at the end of the window. */
  loadAverage: number;
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
  private machineStart: { busy: number; total: number } | null = null;

  constructor(
    private readonly serverPid: number,
    private readonly workerPids: () => number[],
    private readonly intervalMs = 1000,
  ) {}

  start(): void {
    this.startedAt = Date.now();
    this.machineStart = readMachineCpu();
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
    const machineEnd = readMachineCpu();
    const m0 = this.machineStart;
    const machineCpuPercent =
      m0 && machineEnd && machineEnd.total > m0.total ? r1(((machineEnd.busy - m0.busy) / (machineEnd.total - m0.total)) * os.availableParallelism() * 100) : null;
    const server = usage(this.serverPid);
    const workerUsage = workers.map(usage).filter((u): u is ProcessUsage => u !== null);
    const generator = usage(process.pid);
    const mine = [server, generator, ...workerUsage].reduce((a, u) => a + (u?.cpuPercent ?? 0), 0);
    return {
      server,
      workers: workerUsage,
      generator,
      serverRss: this.rss,
      serverRssSlopeMBPerMin: s === null ? null : Math.round(s * 60 * 100) / 100,
      machineCpuPercent,
      othersCpuPercent: machineCpuPercent === null ? null : r1(Math.max(0, machineCpuPercent - mine)),
      loadAverage: Math.round(os.loadavg()[0] * 100) / 100,
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
