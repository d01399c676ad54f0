/**
 * The operations dashboard served by the instance itself (`GET /dashboard`):
 * once a second the same metrics that /metrics exposes are turned into
 * rates, latency percentiles and per-process figures, kept for the last ten
 * minutes, and served as JSON at `/dashboard/data` to the page in
 * web/dashboard.html, which charts them with uPlot.
 */
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { Counter, Histogram } from 'prom-client';
import { nowMs } from '../utils/timing.js';
import { bucketQuantile, bucketsIncrease, histogramBuckets, type Bucket } from '../utils/prometheus.js';
import { sendJson, type Route } from './http-server.js';
import { fileRoute, packageFile, readFile } from './static-files.js';
import type { Metrics, MetricsSources } from './metrics.js';
import { DROP_REASONS } from '../handler/outcomes.js';

export const SAMPLE_INTERVAL_MS = 1000;
/** Ten minutes of samples. */
const SAMPLES_KEPT = 600;
/**
 * Sampling interval of the event-loop delay monitor. What it records is the
 * time between its timer's runs, so the interval itself is subtracted to
 * leave the lag.
 */
const LOOP_RESOLUTION_MS = 10;
/** Latency percentiles are taken over this many intervals, so a second with one unit does not make the line jump. */
const LATENCY_WINDOW_SAMPLES = 5;

export const LATENCIES = ['endToEnd', 'queue', 'ipc', 'model'] as const;
export type LatencyName = (typeof LATENCIES)[number];

export interface Percentiles {
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

/** One second of the instance, as the page charts it. Rates are per second, latencies in ms. */
export interface DashboardSample {
  /** ms since the Unix epoch. */
  t: number;
  connections: number;
  sessions: number;
  detachedSessions: number;
  framesIn: number;
  analysed: number;
  rejected: number;
  dropped: number;
  droppedBy: Record<string, number>;
  results: number;
  netInBytes: number;
  netOutBytes: number;
  latencyMs: Record<LatencyName, Percentiles>;
  /** CPU use in % of one core: the server, and each worker slot (null while the slot has no process). */
  cpuPercent: { server: number; workers: Array<number | null> };
  rssBytes: { server: number; workers: Array<number | null> };
  workerPids: Array<number | null>;
  workersReady: number;
  workersBusy: number;
  restarts: number;
  loopLagMs: { p99: number; max: number };
  queuedUnits: number;
  budgetUsedBytes: number;
  budgetLimitBytes: number;
  ready: boolean;
}

/** Running totals read from the metrics at one moment. */
interface Totals {
  at: number;
  received: number;
  analysed: number;
  rejected: number;
  dropped: Record<string, number>;
  results: number;
  netIn: number;
  netOut: number;
  buckets: Record<LatencyName, Bucket[]>;
  serverCpuSeconds: number;
  workerCpu: Array<{ pid: number; cpuSeconds: number } | null>;
}

const sumOf = async (metric: Counter<string>) => (await metric.get()).values.reduce((n, v) => n + v.value, 0);

/** A histogram's buckets as prom-client holds them, read the way a scrape of /metrics is read. */
async function bucketsOf(h: Histogram<string>): Promise<Bucket[]> {
  const { name, values } = await h.get();
  const parsed = values.map((v) => ({
    name: v.metricName ?? name,
    labels: Object.fromEntries(Object.entries(v.labels).map(([k, x]) => [k, String(x)])),
    value: v.value,
  }));
  return histogramBuckets({ parsed }, name);
}

const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

export class DashboardFeed {
  private readonly samples: DashboardSample[] = [];
  private readonly history: Totals[] = [];
  private readonly loop: IntervalHistogram;
  private readonly timer: NodeJS.Timeout;
  private sampling = false;
  private readonly startedAt = Date.now();

  constructor(
    private readonly metrics: Metrics,
    private readonly sources: MetricsSources,
    private readonly intervalMs = SAMPLE_INTERVAL_MS,
  ) {
    this.loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
    this.loop.enable();
    this.timer = setInterval(() => void this.sample(), intervalMs);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
    this.loop.disable();
  }

  /** Samples taken after `since` (ms since the Unix epoch), oldest first. */
  since(since = 0): DashboardSample[] {
    return this.samples.filter((s) => s.t > since);
  }

  /** Take one sample now (the timer does this every interval). */
  async sample(): Promise<DashboardSample | null> {
    if (this.sampling) return null;
    this.sampling = true;
    try {
      const totals = await this.totals();
      const previous = this.history[this.history.length - 1];
      this.history.push(totals);
      if (this.history.length > LATENCY_WINDOW_SAMPLES + 1) this.history.shift();
      if (!previous) return null;
      const sample = this.toSample(totals, previous, this.history[0]);
      this.samples.push(sample);
      if (this.samples.length > SAMPLES_KEPT) this.samples.shift();
      return sample;
    } finally {
      this.sampling = false;
    }
  }

  /** GET /dashboard (the page), /dashboard/data (JSON) and the charting library's files. */
  routes(webRoot: string): Record<string, Route> {
    const page = readFile(path.join(webRoot, 'dashboard.html'));
    return {
      '/dashboard': page ? fileRoute(page) : (_req, res) => sendJson(res, 404, { error: 'not_found' }),
      '/dashboard/data': (req, res) => {
        const since = Number(new URL(req.url ?? '/', 'http://localhost').searchParams.get('since') ?? 0);
        sendJson(res, 200, {
          instance: { hostname: os.hostname(), pid: process.pid, startedAt: this.startedAt, workers: this.sources.pool.size },
          intervalMs: this.intervalMs,
          dropReasons: DROP_REASONS,
          samples: this.since(Number.isFinite(since) ? since : 0),
        });
      },
      '/dashboard/uplot.js': fileRoute(packageFile('uplot/dist/uPlot.iife.min.js')),
      '/dashboard/uplot.css': fileRoute(packageFile('uplot/dist/uPlot.min.css')),
    };
  }

  private async totals(): Promise<Totals> {
    const m = this.metrics;
    const dropped: Record<string, number> = {};
    for (const v of (await m.framesDropped.get()).values) dropped[String(v.labels.reason)] = v.value;
    const buckets = {
      endToEnd: await bucketsOf(m.endToEnd),
      queue: await bucketsOf(m.queueWait),
      ipc: await bucketsOf(m.ipcRoundTrip),
      model: await bucketsOf(m.modelTime),
    };
    const cpu = process.cpuUsage();
    const workerCpu: Totals['workerCpu'] = new Array(this.sources.pool.size).fill(null);
    for (const w of m.workerStats()) workerCpu[w.slot] = { pid: w.pid, cpuSeconds: w.cpuSeconds };
    return {
      at: nowMs(),
      received: await sumOf(m.framesReceived),
      analysed: await sumOf(m.framesAnalysed),
      rejected: await sumOf(m.framesRejected),
      dropped,
      results: await sumOf(m.results),
      netIn: await sumOf(m.networkReceived),
      netOut: await sumOf(m.networkSent),
      buckets,
      serverCpuSeconds: (cpu.user + cpu.system) / 1e6,
      workerCpu,
    };
  }

  private toSample(now: Totals, before: Totals, windowStart: Totals): DashboardSample {
    const dt = Math.max(0.001, (now.at - before.at) / 1000);
    const rate = (a: number, b: number) => round(Math.max(0, a - b) / dt, 2);
    const s = this.sources;
    const droppedBy: Record<string, number> = {};
    for (const reason of Object.keys(now.dropped)) droppedBy[reason] = rate(now.dropped[reason], before.dropped[reason] ?? 0);
    const latencyMs = {} as Record<LatencyName, Percentiles>;
    for (const name of LATENCIES) {
      const window = bucketsIncrease(now.buckets[name], windowStart.buckets[name]);
      const q = (x: number) => {
        const v = bucketQuantile(window, x);
        return v === null ? null : round(v * 1000);
      };
      latencyMs[name] = { p50: q(0.5), p95: q(0.95), p99: q(0.99) };
    }
    const stats = this.metrics.workerStats();
    const rss: Array<number | null> = new Array(s.pool.size).fill(null);
    const pids: Array<number | null> = new Array(s.pool.size).fill(null);
    for (const w of stats) {
      rss[w.slot] = w.rssBytes;
      pids[w.slot] = w.pid;
    }
    const workerCpu = now.workerCpu.map((w, slot) => {
      if (!w) return null;
      const prev = before.workerCpu[slot];
      // A replaced worker's CPU time starts from 0.
      const used = prev && prev.pid === w.pid ? w.cpuSeconds - prev.cpuSeconds : w.cpuSeconds;
      return round((Math.max(0, used) / dt) * 100);
    });
    const lagMs = (ns: number) => round(Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS), 2);
    const lag = { p99: lagMs(this.loop.percentile(99)), max: lagMs(this.loop.max) };
    this.loop.reset();
    const sessions = s.sessions();
    const restarts = s.pool.restartCounts;
    return {
      t: Date.now(),
      connections: s.connections(),
      sessions: sessions.attached,
      detachedSessions: sessions.detached,
      framesIn: rate(now.received, before.received),
      analysed: rate(now.analysed, before.analysed),
      rejected: rate(now.rejected, before.rejected),
      dropped: round(Object.values(droppedBy).reduce((a, b) => a + b, 0), 2),
      droppedBy,
      results: rate(now.results, before.results),
      netInBytes: rate(now.netIn, before.netIn),
      netOutBytes: rate(now.netOut, before.netOut),
      latencyMs,
      cpuPercent: { server: round(((now.serverCpuSeconds - before.serverCpuSeconds) / dt) * 100), workers: workerCpu },
      rssBytes: { server: process.memoryUsage.rss(), workers: rss },
      workerPids: pids,
      workersReady: s.pool.readyCount,
      workersBusy: s.pool.busyCount,
      restarts: Object.values(restarts).reduce((n, c) => n + c, 0),
      loopLagMs: lag,
      queuedUnits: s.models.queuedUnits(),
      budgetUsedBytes: s.budget.used,
      budgetLimitBytes: s.budget.limitBytes,
      ready: s.ready(),
    };
  }
}
