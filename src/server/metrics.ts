/**
 * The instance's Prometheus metrics (`GET /metrics`): what the frame path
 * reports through its hooks, and what the worker pool, the queues and the
 * processes show when scraped.
 *
 * Naming follows Prometheus' conventions: one prefix, base units
 * (seconds, bytes), `_total` on counters, and no label whose values grow
 * with users or sessions (worker slots are bounded by WORKERS). prom-client's
 * default metrics (`process_*`, `nodejs_*`, among them the server's CPU,
 * memory and event-loop lag) keep their standard names, so the dashboards
 * people already have for Node processes work unchanged.
 */
import type { Duplex } from 'node:stream';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ErrorCode } from '../handler/errors.js';
import type { FrameBudget } from '../handler/frame-budget.js';
import type { LoadMonitor } from '../handler/load-monitor.js';
import type { Scheduler } from '../handler/scheduler.js';
import type { PipelineHooks } from '../handler/session-pipeline.js';
import { RESTART_CAUSES, type WorkerPool } from '../ipc/worker-pool.js';
import type { SessionStore } from './session-store.js';
import { nowMs } from '../utils/timing.js';
import { readProcessStats, type ProcessStats } from '../utils/process-stats.js';
import type { Route } from './http-server.js';
import { DROP_REASONS } from '../handler/outcomes.js';

export const METRICS_PREFIX = 'jipjung_';

/**
 * Latency buckets in seconds, from 1 ms to 10 s: fine where model time and
 * IPC sit (a few ms to a few hundred), and around one second where the end
 * to end latency of a 1 s batch sits.
 */
export const LATENCY_BUCKETS_SECONDS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 1.25, 1.5, 2, 3, 5, 10,
];

/** Codes a frame can be refused with; their series exist (at 0) from start-up. */
const FRAME_REJECTION_CODES: ErrorCode[] = [
  'unsupported_version',
  'unsupported_format',
  'frame_too_large',
  'frame_invalid',
  'jpeg_invalid',
  'jpeg_truncated',
  'image_too_large',
  'image_undecodable',
  'timestamp_invalid',
];
const RESULT_KINDS = ['batch', 'window'] as const;

/** What the scrape-time figures are read from. */
export interface MetricsSources {
  /** Open WebSocket connections. */
  connections(): number;
  sessions(): { attached: number; detached: number };
  pool: Pick<WorkerPool, 'size' | 'readyCount' | 'busyCount' | 'restartCounts' | 'workers'>;
  /** The units waiting for workers. */
  models: Pick<Scheduler, 'queuedUnits' | 'oldestWaitMs'>;
  budget: Pick<FrameBudget, 'used' | 'limitBytes'>;
  load: Pick<LoadMonitor, 'current'>;
  /** What /readyz answers. */
  ready(): boolean;
  /** The session store: Redis reachable or not, records waiting to be written. */
  store: Pick<SessionStore, 'status'>;
}

export interface WorkerStats extends ProcessStats {
  slot: number;
  busy: boolean;
}

/** Worker stats read once serve every metric of the same scrape. */
const WORKER_STATS_TTL_MS = 250;

const seconds = (ms: number) => Math.max(0, ms) / 1000;

/** A WebSocket, as far as counting it goes. */
interface Countable {
  once(event: 'close', listener: () => void): unknown;
}

export class Metrics {
  readonly registry = new Registry();
  /** Every source, the open connections (counted here, see `countConnection`) among them. */
  readonly sources: MetricsSources;
  private openConnections = 0;
  private readonly sockets = new Set<{ bytesRead: number; bytesWritten: number }>();
  private closedSocketBytes = { read: 0, written: 0 };
  private workerStatsCache: { at: number; stats: WorkerStats[] } | null = null;

  private readonly r = [this.registry];
  private readonly p = METRICS_PREFIX;

  readonly connectionsTotal = new Counter({
    name: `${this.p}connections_total`,
    help: 'WebSocket connections accepted on the stream endpoint.',
    registers: this.r,
  });

  readonly framesReceived = new Counter({
    name: `${this.p}frames_received_total`,
    help: 'Frame messages received (each ends analysed, rejected or dropped).',
    registers: this.r,
  });

  readonly frameBytesReceived = new Counter({
    name: `${this.p}frames_received_bytes_total`,
    help: 'Bytes of frame messages received, headers included.',
    registers: this.r,
  });

  readonly framesAnalysed = new Counter({
    name: `${this.p}frames_analysed_total`,
    help: 'Frames the model analysed.',
    registers: this.r,
  });

  readonly framesRejected = new Counter({
    name: `${this.p}frames_rejected_total`,
    help: 'Frames refused with an error code sent to the client, by code.',
    labelNames: ['code'],
    registers: this.r,
  });

  readonly framesDropped = new Counter({
    name: `${this.p}frames_dropped_total`,
    help: 'Frames received but not analysed, by reason (shed: the workers were behind).',
    labelNames: ['reason'],
    registers: this.r,
  });

  readonly units = new Counter({
    name: `${this.p}units_total`,
    help: 'Units (batches of frames) a worker analysed and answered.',
    registers: this.r,
  });

  readonly aligns = new Counter({
    name: `${this.p}aligns_total`,
    help: 'align messages sent: sessions asked to delay their capture so that their units spread out.',
    registers: this.r,
  });

  readonly results = new Counter({
    name: `${this.p}results_total`,
    help: 'Result messages sent to clients, by kind.',
    labelNames: ['kind'],
    registers: this.r,
  });

  readonly queueWait = new Histogram({
    name: `${this.p}queue_wait_seconds`,
    help: "Time a unit's last frame waited for a worker, from reaching the scheduler to being sent.",
    buckets: LATENCY_BUCKETS_SECONDS,
    registers: this.r,
  });

  readonly ipcRoundTrip = new Histogram({
    name: `${this.p}ipc_round_trip_seconds`,
    help: "Time from closing a unit at its worker to its result: the last frame's work and the assembly.",
    buckets: LATENCY_BUCKETS_SECONDS,
    registers: this.r,
  });

  readonly modelTime = new Histogram({
    name: `${this.p}model_seconds`,
    help: 'Time the model spent on a unit, measured inside the Python worker.',
    buckets: LATENCY_BUCKETS_SECONDS,
    registers: this.r,
  });

  readonly endToEnd = new Histogram({
    name: `${this.p}end_to_end_seconds`,
    help: 'Time from a frame arriving at the server to the sending of the batch result that covers it (one observation per frame taken to a worker).',
    buckets: LATENCY_BUCKETS_SECONDS,
    registers: this.r,
  });

  readonly networkReceived = new Counter({
    name: `${this.p}network_received_bytes_total`,
    help: 'Bytes read on stream connections (TCP payload: HTTP upgrade and WebSocket frames).',
    registers: this.r,
    collect: () => this.collectSocketBytes(),
  });

  readonly networkSent = new Counter({
    name: `${this.p}network_sent_bytes_total`,
    help: 'Bytes written on stream connections (TCP payload: HTTP upgrade and WebSocket frames).',
    registers: this.r,
    collect: () => this.collectSocketBytes(),
  });

  /**
   * `sources` are read at scrape time; the open connections are counted
   * here, from `countConnection`, so that the metrics can exist before the
   * stream server, which reports to them.
   */
  constructor(sources: Omit<MetricsSources, 'connections'>) {
    this.sources = { ...sources, connections: () => this.openConnections };
    collectDefaultMetrics({ register: this.registry });
    for (const code of FRAME_REJECTION_CODES) this.framesRejected.inc({ code }, 0);
    for (const reason of DROP_REASONS) this.framesDropped.inc({ reason }, 0);
    for (const kind of RESULT_KINDS) this.results.inc({ kind }, 0);
    this.scrapeTimeMetrics();
  }

  /** Hooks for the sessions' pipelines. */
  readonly pipelineHooks = {
    onReceived: (_sessionId, bytes) => {
      this.framesReceived.inc();
      this.frameBytesReceived.inc(bytes);
    },
    onRejected: (_sessionId, code) => this.framesRejected.inc({ code }),
    onDropped: (_sessionId, reason, n) => this.framesDropped.inc({ reason }, n),
    onAligned: () => this.aligns.inc(),
    onUnitDone: (_sessionId, _unit, timing) => {
      this.units.inc();
      this.queueWait.observe(seconds(timing.queueMs));
      this.ipcRoundTrip.observe(seconds(timing.ipcMs));
      this.modelTime.observe(seconds(timing.modelMs));
    },
    onResult: (_sessionId, kind, unit) => {
      this.results.inc({ kind });
      if (kind !== 'batch') return;
      const now = nowMs();
      for (const f of unit.frames) this.endToEnd.observe(seconds(now - f.receivedAt));
    },
    onAnalysed: (_sessionId, n) => this.framesAnalysed.inc(n),
  } satisfies PipelineHooks;

  /** Count a WebSocket connection, and it as open until it closes. */
  countConnection(ws: Countable): void {
    this.connectionsTotal.inc();
    this.openConnections++;
    ws.once('close', () => this.openConnections--);
  }

  /** Count the bytes of an upgraded (or refused) stream socket, live and after it closes. */
  trackSocket(socket: Duplex): void {
    const s = socket as Duplex & { bytesRead?: number; bytesWritten?: number };
    if (typeof s.bytesRead !== 'number' || typeof s.bytesWritten !== 'number') return;
    const counted = s as { bytesRead: number; bytesWritten: number };
    this.sockets.add(counted);
    socket.once('close', () => {
      this.sockets.delete(counted);
      this.closedSocketBytes.read += counted.bytesRead;
      this.closedSocketBytes.written += counted.bytesWritten;
    });
  }

  /** CPU, memory and state of each worker process (cached for a moment, /proc is read at most every 250 ms). */
  workerStats(): WorkerStats[] {
    const now = nowMs();
    if (this.workerStatsCache && now - this.workerStatsCache.at < WORKER_STATS_TTL_MS) return this.workerStatsCache.stats;
    const stats: WorkerStats[] = [];
    for (const w of this.sources.pool.workers()) {
      if (w.pid === undefined) continue;
      const s = readProcessStats(w.pid);
      if (s) stats.push({ ...s, slot: w.slot, busy: w.busy });
    }
    this.workerStatsCache = { at: now, stats };
    return stats;
  }

  /** The Prometheus text exposition. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  readonly route: Route = async (_req, res) => {
    const body = await this.render();
    res.writeHead(200, { 'content-type': this.registry.contentType, 'cache-control': 'no-store' });
    res.end(body);
  };

  private collectSocketBytes(): void {
    let read = this.closedSocketBytes.read;
    let written = this.closedSocketBytes.written;
    for (const s of this.sockets) {
      read += s.bytesRead;
      written += s.bytesWritten;
    }
    setCounter(this.networkReceived, read);
    setCounter(this.networkSent, written);
  }

  /** Gauges (and counters kept elsewhere) read from the sources at scrape time. */
  private scrapeTimeMetrics(): void {
    // prom-client calls collect() with the metric as `this`.
    const metrics = this;
    const gauge = (name: string, help: string, read: (s: MetricsSources) => number) =>
      new Gauge({
        name: `${this.p}${name}`,
        help,
        registers: this.r,
        collect() {
          this.set(read(metrics.sources));
        },
      });
    gauge('connections', 'Open WebSocket connections on the stream endpoint.', (s) => s.connections());
    new Gauge({
      name: `${this.p}sessions`,
      help: 'Sessions held, by state (detached: waiting for its client to resume).',
      labelNames: ['state'],
      registers: this.r,
      collect() {
        const s = metrics.sources.sessions();
        this.set({ state: 'attached' }, s.attached);
        this.set({ state: 'detached' }, s.detached);
      },
    });
    gauge('workers', 'Worker slots in the pool (WORKERS).', (s) => s.pool.size);
    gauge('workers_ready', 'Workers running and ready for units.', (s) => s.pool.readyCount);
    gauge('workers_busy', 'Workers analysing a unit now.', (s) => s.pool.busyCount);
    new Counter({
      name: `${this.p}worker_restarts_total`,
      help: 'Worker processes replaced, by cause.',
      labelNames: ['cause'],
      registers: this.r,
      collect() {
        const counts = metrics.sources.pool.restartCounts;
        for (const cause of RESTART_CAUSES) setCounter(this, counts[cause], { cause });
      },
    });
    new Counter({
      name: `${this.p}worker_cpu_seconds_total`,
      help: 'CPU time (user and system) of the worker process in each slot; starts again from 0 when the worker is replaced.',
      labelNames: ['slot'],
      registers: this.r,
      collect() {
        this.reset();
        for (const w of metrics.workerStats()) this.inc({ slot: String(w.slot) }, w.cpuSeconds);
      },
    });
    new Gauge({
      name: `${this.p}worker_resident_memory_bytes`,
      help: 'Resident memory of the worker process in each slot.',
      labelNames: ['slot'],
      registers: this.r,
      collect() {
        this.reset();
        for (const w of metrics.workerStats()) this.set({ slot: String(w.slot) }, w.rssBytes);
      },
    });
    gauge('queued_units', 'Units with frames waiting for a worker, over all sessions.', (s) => s.models.queuedUnits());
    gauge('oldest_unit_wait_seconds', 'How long the frame furthest behind has waited for a worker since a result began to wait on it.', (s) => seconds(s.models.oldestWaitMs()));
    gauge('frame_budget_used_bytes', 'Bytes of frames held by all sessions, against the budget.', (s) => s.budget.used);
    gauge('frame_budget_limit_bytes', 'The frame budget (FRAME_BUDGET_BYTES).', (s) => s.budget.limitBytes);
    gauge('throttle_fps', 'Frames per second clients are asked to send now (below FPS while overloaded).', (s) => s.load.current.fps);
    gauge('accepting_sessions', '1 while new sessions are accepted, 0 while refused for overload.', (s) => (s.load.current.accepting ? 1 : 0));
    gauge('ready', '1 while /readyz answers 200.', (s) => (s.ready() ? 1 : 0));
    gauge('session_store_up', '1 while the session store is reachable (always 1 for the in-memory store).', (s) => (s.store.status().healthy ? 1 : 0));
    gauge('session_store_pending_records', 'Session records waiting for the store to come back.', (s) => s.store.status().pending);
  }
}

/** Set a counter kept elsewhere (a running total) to its current value. */
function setCounter(counter: Counter<string>, value: number, labels?: Record<string, string>): void {
  if (labels) {
    counter.remove(labels);
    counter.inc(labels, value);
  } else {
    counter.reset();
    counter.inc(value);
  }
}
