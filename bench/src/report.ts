/**
 * Turns what a step measured into its report, pure code: the frame
 * accounting (and its arithmetic check), latency, throughput, CPU and
 * memory, and whether the step held the latency target.
 */
import { counterIncrease, histogramQuantile, parseExposition } from '../../dist/utils/prometheus.js';
import type { Faces } from './frames.js';
import type { LatencySummary } from './histogram.js';
import type { LoadResult, SessionOutcome, UnitCounts } from './load-generator.js';
import type { ProcessUsage, Usage } from './process-sampler.js';
import type { RawResult } from './raw-throughput.js';

/** Where every frame sent ended. sent = analysed + shed + rejected + dropped + lost. */
export interface FrameAccounting {
  sent: number;
  /** Counted by the server (summary.framesReceived, or what the results account for without a summary). */
  received: number;
  analysed: number;
  /** Dropped because the workers were behind. */
  shed: number;
  /** Refused with an error code. */
  rejected: number;
  /** Dropped for another reason (rate_limited, duplicate, late, model_error, session_closed). */
  dropped: number;
  droppedByReason: Record<string, number>;
  /** Sent but never accounted for by the server. */
  lost: number;
  /** Camera ticks not sent because the server throttled the session. */
  withheld: number;
  sessionsWithSummary: number;
}

export interface ArithmeticCheck {
  ok: boolean;
  problems: string[];
}

export interface WindowFigures {
  seconds: number;
  /** Frames sent with a scheduled time inside the window. */
  sent: number;
  withheld: number;
  /** Batch results whose last seq was scheduled inside the window. */
  batches: number;
  slots: number;
  analysed: number;
  shed: number;
  /** End-to-end analysed frames per second (the throughput). */
  analysedPerSecond: number;
  /** Batch results per session per second (1.0 at 5 fps with 5-frame batches). */
  resultsPerSessionPerSecond: number;
  /** Shed frames / seq slots covered by the window's results. */
  shedFraction: number;
  /** Withheld ticks / camera ticks (sent + withheld). */
  withheldFraction: number;
  /** Seq slots sent in the window that no result covered by the end. */
  unanswered: number;
  minResultsPerSession: number;
  sessionsWithoutResults: number;
}

export interface ServerSideFigures {
  units: number;
  queueWaitMeanMs: number | null;
  queueWaitP95Ms: number | null;
  ipcMeanMs: number | null;
  modelMeanMs: number | null;
  /** IPC round trip minus model time, mean: the codec, the pipes and the worker loop. */
  ipcOverheadMeanMs: number | null;
  endToEndMeanMs: number | null;
  eventLoopLagP99Ms: number | null;
  /** Frame budget in use at the end of the window, and its limit (FRAME_BUDGET_BYTES), MB. */
  frameBudgetUsedMB: number | null;
  frameBudgetLimitMB: number | null;
  /** fps the server asked clients for at the end of the window (FPS when not throttling). */
  throttleFps: number | null;
}

export interface StepReport {
  /** Sessions connected at once. */
  sessions: number;
  /** Session lifetime in seconds when sessions came and went (null: each lasted the whole step). */
  lifetimeS: number | null;
  /** Sessions opened over the step (more than `sessions` when they came and went). */
  opened: number;
  openErrors: Record<string, number>;
  frames: FrameAccounting;
  arithmetic: ArithmeticCheck;
  window: WindowFigures;
  latencyMs: LatencySummary | null;
  analysedLatencyMs: LatencySummary | null;
  addedLatencyMs: LatencySummary | null;
  modelMs: LatencySummary | null;
  sendLagMs: LatencySummary | null;
  /** Send of a unit's last frame → its model began, and model done → result at the generator. */
  toModelMs: LatencySummary | null;
  fromModelMs: LatencySummary | null;
  server: ProcessUsage | null;
  workers: ProcessUsage[];
  generator: ProcessUsage | null;
  serverRssSlopeMBPerMin: number | null;
  serverRss: Array<[number, number]>;
  /** Busy CPU of the whole machine and of processes other than the bench's over the window, % of one core. */
  machineCpuPercent: number | null;
  othersCpuPercent: number | null;
  loadAverage: number | null;
  serverSide: ServerSideFigures | null;
  throttledSessions: number;
  /** `align` messages the sessions received (each delays a sending session's capture once, so that units spread out). */
  aligns: number;
  minFps: number | null;
  /** Seconds from the start of the measurement window to the first throttle (negative: during the ramp). */
  firstThrottleS: number | null;
  errors: Record<string, number>;
  /** Closes other than 1000 after bye, by code. */
  abnormalCloses: Record<string, number>;
  serverEvents: Record<string, number>;
  serverExited: boolean;
  /** With --raw-each-step: the raw runs just before and just after this step, which its efficiency and costs are taken against. */
  rawAround: RawResult[];
  /** CPU per analysed frame, filled in once the raw run after the steps is known (null without a raw run). */
  costs: FrameCosts | null;
  /** Whether the step held: p95 (or the chosen percentile) within target, shedding within bound, nothing broken. */
  held: boolean;
  reasons: string[];
  /** find-capacity: the step failed while other processes took the CPU, and was run again (the next step of the same N). */
  disturbed: boolean;
}

export interface Criteria {
  targetMs: number;
  percentile: 50 | 95 | 99;
  /** Largest fraction of frames shed (or withheld by throttling) that still holds. */
  maxShedFraction: number;
}

const add = (o: Record<string, number>, k: string, n = 1) => {
  if (n !== 0) o[k] = (o[k] ?? 0) + n;
};
const r2 = (x: number) => Math.round(x * 100) / 100;
/** prom-client's event-loop delay timer (`eventLoopMonitoringPrecision`, 10 ms by default), in s. */
const PROM_LOOP_RESOLUTION_S = 0.01;

/** Frame accounting of one session: from its summary when it has one, else from its results. */
export function accountSession(s: SessionOutcome): FrameAccounting {
  const c = s.counts;
  const droppedByReason: Record<string, number> = {};
  if (s.summary) {
    const sum = s.summary;
    const shed = sum.dropped?.shed ?? 0;
    for (const [reason, n] of Object.entries<number>(sum.dropped ?? {})) if (reason !== 'shed') add(droppedByReason, reason, n);
    const dropped = sum.framesDropped - shed;
    return {
      sent: c.sent,
      received: sum.framesReceived,
      analysed: sum.framesAnalyzed,
      shed,
      rejected: sum.framesRejected,
      dropped,
      droppedByReason,
      lost: c.sent - sum.framesReceived,
      withheld: c.withheld,
      sessionsWithSummary: 1,
    };
  }
  // No summary (closed, or no answer to bye in time): what the results said, the rest lost.
  const k: UnitCounts = c.counts;
  add(droppedByReason, 'rate_limited', k.rateLimited);
  add(droppedByReason, 'duplicate', k.duplicate);
  add(droppedByReason, 'late', k.late);
  const errorsWithSeq = Object.entries(c.errors)
    .filter(([code]) => code !== 'model_error' && code !== 'rate_limited')
    .reduce((a, [, n]) => a + n, 0);
  const rejected = Math.max(k.rejected, errorsWithSeq);
  const dropped = k.rateLimited + k.duplicate + k.late;
  const received = Math.min(c.sent, c.analysedInResults + k.shed + rejected + dropped);
  return {
    sent: c.sent,
    received,
    analysed: c.analysedInResults,
    shed: k.shed,
    rejected,
    dropped,
    droppedByReason,
    lost: c.sent - received,
    withheld: c.withheld,
    sessionsWithSummary: 0,
  };
}

export function sumAccounting(list: FrameAccounting[]): FrameAccounting {
  const total: FrameAccounting = {
    sent: 0,
    received: 0,
    analysed: 0,
    shed: 0,
    rejected: 0,
    dropped: 0,
    droppedByReason: {},
    lost: 0,
    withheld: 0,
    sessionsWithSummary: 0,
  };
  for (const a of list) {
    total.sent += a.sent;
    total.received += a.received;
    total.analysed += a.analysed;
    total.shed += a.shed;
    total.rejected += a.rejected;
    total.dropped += a.dropped;
    total.lost += a.lost;
    total.withheld += a.withheld;
    total.sessionsWithSummary += a.sessionsWithSummary;
    for (const [k, n] of Object.entries(a.droppedByReason)) add(total.droppedByReason, k, n);
  }
  return total;
}

/**
 * The report's arithmetic: every frame sent has exactly one outcome
 * (sent = analysed + shed + rejected + dropped + lost, with lost ≥ 0), the
 * server's summary agrees with itself (received = analysed + rejected +
 * dropped), and with the results the client received (frames analysed and
 * shed per batch add up to the summary's).
 */
export function checkArithmetic(sessions: SessionOutcome[], total: FrameAccounting): ArithmeticCheck {
  const problems: string[] = [];
  const { sent, analysed, shed, rejected, dropped, lost } = total;
  if (sent !== analysed + shed + rejected + dropped + lost) {
    problems.push(`sent ${sent} ≠ analysed ${analysed} + shed ${shed} + rejected ${rejected} + dropped ${dropped} + lost ${lost}`);
  }
  for (const s of sessions) {
    const a = accountSession(s);
    if (a.lost < 0) problems.push(`session ${s.index}: the server counted ${a.received} frames, ${-a.lost} more than were sent`);
    if (!s.summary) continue;
    const sum = s.summary;
    if (sum.framesReceived !== sum.framesAnalyzed + sum.framesRejected + sum.framesDropped) {
      problems.push(`session ${s.index}: summary received ${sum.framesReceived} ≠ analysed + rejected + dropped`);
    }
    if (s.counts.analysedInResults !== sum.framesAnalyzed) {
      problems.push(`session ${s.index}: results say ${s.counts.analysedInResults} frames analysed, the summary ${sum.framesAnalyzed}`);
    }
    if (s.counts.counts.shed !== (sum.dropped?.shed ?? 0)) {
      problems.push(`session ${s.index}: results say ${s.counts.counts.shed} frames shed, the summary ${sum.dropped?.shed ?? 0}`);
    }
  }
  return { ok: problems.length === 0, problems: problems.slice(0, 20) };
}

export function serverSideFigures(before: string | null, after: string | null): ServerSideFigures | null {
  if (!before || !after) return null;
  const b = parseExposition(before);
  const a = parseExposition(after);
  const delta = (series: string) => counterIncrease(b.samples, a.samples, series);
  const meanMs = (name: string) => {
    const n = delta(`${name}_count`);
    return n > 0 ? r2((delta(`${name}_sum`) / n) * 1000) : null;
  };
  const lagOverTimer = (x: number | undefined) => (x === undefined ? undefined : Math.max(0, x - PROM_LOOP_RESOLUTION_S));
  const ms = (x: number | null | undefined) => (x === null || x === undefined ? null : r2(x * 1000));
  const mb = (x: number | undefined) => (x === undefined ? null : r2(x / 1024 ** 2));
  const ipc = meanMs('jipjung_ipc_round_trip_seconds');
  const model = meanMs('jipjung_model_seconds');
  return {
    units: delta('jipjung_units_total'),
    queueWaitMeanMs: meanMs('jipjung_queue_wait_seconds'),
    queueWaitP95Ms: ms(histogramQuantile(b, a, 'jipjung_queue_wait_seconds', 0.95)),
    ipcMeanMs: ipc,
    modelMeanMs: model,
    ipcOverheadMeanMs: ipc !== null && model !== null ? r2(ipc - model) : null,
    endToEndMeanMs: meanMs('jipjung_end_to_end_seconds'),
    // prom-client samples the loop with a 10-ms timer and records each whole interval, timer included.
    eventLoopLagP99Ms: ms(lagOverTimer(a.samples.get('nodejs_eventloop_lag_p99_seconds'))),
    frameBudgetUsedMB: mb(a.samples.get('jipjung_frame_budget_used_bytes')),
    frameBudgetLimitMB: mb(a.samples.get('jipjung_frame_budget_limit_bytes')),
    throttleFps: a.samples.get('jipjung_throttle_fps') ?? null,
  };
}

export interface StepInputs {
  sessions: number;
  lifetimeS?: number | null;
  load: LoadResult;
  usage: Usage | null;
  metricsBefore: string | null;
  metricsAfter: string | null;
  serverEvents: Record<string, number>;
  serverExited: boolean;
  criteria: Criteria;
}

export function buildStepReport(i: StepInputs): StepReport {
  const { load } = i;
  const rec = load.recorder;
  const opened = load.sessions.filter((s) => s.openError === null);
  const openErrors: Record<string, number> = {};
  for (const s of load.sessions) if (s.openError) add(openErrors, s.openError);
  const frames = sumAccounting(opened.map(accountSession));
  const arithmetic = checkArithmetic(opened, frames);
  const seconds = load.windowMs / 1000;
  const lifetimeS = i.lifetimeS ?? null;
  // Sessions that came and went may have lived mostly outside the window: each must have had results, not
  // necessarily inside it.
  const perSession = opened.map((s) => (lifetimeS !== null ? s.counts.batches : s.counts.windowBatches));
  const unanswered = opened.reduce((n, s) => n + Math.max(0, s.counts.sent - s.counts.slotsCovered), 0);
  const window: WindowFigures = {
    seconds: r2(seconds),
    sent: rec.windowSent,
    withheld: rec.windowWithheld,
    batches: rec.latency.count,
    slots: rec.windowSlots,
    analysed: rec.windowAnalysed,
    shed: rec.windowShed,
    analysedPerSecond: r2(rec.windowAnalysed / seconds),
    resultsPerSessionPerSecond: opened.length > 0 ? r2(rec.latency.count / (lifetimeS !== null ? i.sessions : opened.length) / seconds) : 0,
    shedFraction: rec.windowSlots > 0 ? rec.windowShed / rec.windowSlots : 0,
    withheldFraction: rec.windowSent + rec.windowWithheld > 0 ? rec.windowWithheld / (rec.windowSent + rec.windowWithheld) : 0,
    unanswered,
    minResultsPerSession: perSession.length > 0 ? Math.min(...perSession) : 0,
    sessionsWithoutResults: perSession.filter((n) => n === 0).length,
  };
  const errors: Record<string, number> = {};
  const abnormalCloses: Record<string, number> = {};
  let throttledSessions = 0;
  let aligns = 0;
  let minFps: number | null = null;
  let firstThrottle: number | null = null;
  for (const s of opened) {
    const t = s.counts.firstThrottleAt;
    if (t !== null && (firstThrottle === null || t < firstThrottle)) firstThrottle = t;
    for (const [code, n] of Object.entries(s.counts.errors)) add(errors, code, n);
    if (s.closed && s.closed.code !== 1000) add(abnormalCloses, String(s.closed.code));
    if (s.counts.throttles > 0) throttledSessions++;
    aligns += s.counts.aligns;
    minFps = minFps === null ? s.counts.minFps : Math.min(minFps, s.counts.minFps);
  }
  const report: StepReport = {
    sessions: i.sessions,
    lifetimeS,
    opened: opened.length,
    openErrors,
    frames,
    arithmetic,
    window,
    latencyMs: rec.latency.summary(),
    analysedLatencyMs: rec.analysedLatency.summary(),
    addedLatencyMs: rec.addedLatency.summary(),
    modelMs: rec.modelMs.summary(),
    sendLagMs: rec.sendLag.summary(),
    toModelMs: rec.toModel.summary(),
    fromModelMs: rec.fromModel.summary(),
    server: i.usage?.server ?? null,
    workers: i.usage?.workers ?? [],
    generator: i.usage?.generator ?? null,
    serverRssSlopeMBPerMin: i.usage?.serverRssSlopeMBPerMin ?? null,
    serverRss: i.usage?.serverRss ?? [],
    machineCpuPercent: i.usage?.machineCpuPercent ?? null,
    othersCpuPercent: i.usage?.othersCpuPercent ?? null,
    loadAverage: i.usage?.loadAverage ?? null,
    serverSide: serverSideFigures(i.metricsBefore, i.metricsAfter),
    throttledSessions,
    aligns,
    minFps,
    firstThrottleS: firstThrottle === null ? null : r2((firstThrottle - rec.windowFrom) / 1000),
    errors,
    abnormalCloses,
    serverEvents: i.serverEvents,
    serverExited: i.serverExited,
    rawAround: [],
    costs: null,
    held: false,
    reasons: [],
    disturbed: false,
  };
  report.reasons = verdict(report, i.criteria);
  report.held = report.reasons.length === 0;
  return report;
}

/** Why a step did not hold (empty: it held). */
export function verdict(r: StepReport, c: Criteria): string[] {
  const reasons: string[] = [];
  const lat = r.latencyMs;
  const p = lat ? (c.percentile === 50 ? lat.p50 : c.percentile === 95 ? lat.p95 : lat.p99) : null;
  if (p === null) reasons.push('no result measured');
  else if (p > c.targetMs) reasons.push(`p${c.percentile} ${p} ms > ${c.targetMs} ms`);
  if (r.window.shedFraction > c.maxShedFraction) reasons.push(`${(r.window.shedFraction * 100).toFixed(1)}% shed`);
  if (r.window.withheldFraction > c.maxShedFraction) reasons.push(`${(r.window.withheldFraction * 100).toFixed(1)}% withheld by throttling`);
  const notOpened = Object.values(r.openErrors).reduce((a, b) => a + b, 0);
  if (notOpened > 0) reasons.push(`${notOpened} sessions not opened`);
  if (r.window.sessionsWithoutResults > 0) reasons.push(`${r.window.sessionsWithoutResults} sessions without results`);
  if (r.window.sent > 0 && r.window.unanswered > c.maxShedFraction * r.window.sent) reasons.push(`${r.window.unanswered} frames never answered`);
  if (r.serverExited) reasons.push('the server exited');
  return reasons;
}

export interface BenchReport {
  tool: 'jipjung-bench';
  version: 1;
  startedAt: string;
  command: string;
  /** The code under test: commit, and files of src/ and model/ changed since it. */
  source: { commit: string | null; changed: string[] };
  machine: { cpus: number; cpuModel: string; memoryGB: number; node: string; loadAverage: number[]; platform: string };
  model: { name: 'default' | 'noop'; spec: string; options: string; timing: boolean };
  workers: number;
  mode: 'fixed' | 'capacity' | 'idle';
  /** When the sessions' units begin: uniform over the first `spreadS` seconds of the unit period, drawn from `seed`. */
  phases: { seed: number; spreadS: number };
  /** What the sessions' cameras showed (older reports: the still face). */
  faces?: Faces;
  criteria: Criteria;
  raw: RawResult | null;
  /** The same measured again after the steps: the machine's speed can drift during a run (shared hosts). */
  rawAfter: RawResult | null;
  steps: StepReport[];
  /** find-capacity: the largest N that held, and its step. */
  capacity: { sessions: number; analysedPerSecond: number; efficiency: number | null; serverToModel: number | null; rawFramesPerSecond: number | null } | null;
  /** With --reference: the same steps against the single-process reference server (null without). */
  reference: ReferenceRun | null;
  idle: IdleReport | null;
}

/** The steps run against the reference server, each right after the service's step of the same N. */
export interface ReferenceRun {
  /** The script and the model it ran. */
  server: string;
  steps: StepReport[];
  capacity: BenchReport['capacity'];
  /** With --find-capacity: the capacity ratio the two capacity steps' CPU a frame allows (null without both). */
  cpuCeiling: CpuCeiling | null;
}

/** The service's figures over the reference's for one N: below 1, the service answers sooner. */
export interface ReferenceRatios {
  sessions: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

/** a ÷ b to 3 significant digits: a ratio far below 1 keeps its digits. */
const ratio = (a: number | null | undefined, b: number | null | undefined) =>
  a === null || a === undefined || !b ? null : Number((a / b).toPrecision(3));

/** Latency ratios, service ÷ reference, for every N both ran. */
export function referenceRatios(service: StepReport[], reference: StepReport[]): ReferenceRatios[] {
  return service.flatMap((s) => {
    // A disturbed step was run again: its second run stands for its N.
    const r = reference.find((x) => x.sessions === s.sessions && !x.disturbed);
    if (!r || s.disturbed) return [];
    return [{ sessions: s.sessions, p50: ratio(s.latencyMs?.p50, r.latencyMs?.p50), p95: ratio(s.latencyMs?.p95, r.latencyMs?.p95), p99: ratio(s.latencyMs?.p99, r.latencyMs?.p99) }];
  });
}

/** Sessions held by the service ÷ by the reference (null unless both held some). */
export function capacityRatio(r: Pick<BenchReport, 'capacity' | 'reference'>): number | null {
  return ratio(r.capacity?.sessions, r.reference?.capacity?.sessions);
}

/**
 * The most sessions the service can hold per session the reference holds,
 * by CPU alone on this machine. With every core busy the service analyses
 * at most cores ÷ its CPU a frame (server, workers, and the load generator
 * that shares their cores); the reference's one process at most one core ÷
 * its own (the generator has the other cores). Scheduling cannot beat
 * their quotient: a capacity ratio near it is raised only by a cheaper
 * frame, and the service's cost beyond the reference's model is what keeps
 * it under the number of cores.
 */
export interface CpuCeiling {
  cores: number;
  /** CPU per analysed frame at the service's capacity: server + workers + generator, ms. */
  serviceMs: number;
  /** The reference process's CPU per analysed frame at its capacity, ms. */
  referenceMs: number;
  /** cores × referenceMs ÷ serviceMs. */
  ratio: number;
}

/** The step that held at the N a search found (a disturbed run of that N did not hold: it was run again). */
export function capacityStep(steps: StepReport[], capacity: BenchReport['capacity']): StepReport | undefined {
  return capacity ? steps.find((s) => s.sessions === capacity.sessions && s.held) : undefined;
}

export function cpuCeiling(cores: number, service: StepReport[], serviceCapacity: BenchReport['capacity'], reference: ReferenceRun | null): CpuCeiling | null {
  const s = capacityStep(service, serviceCapacity)?.costs;
  const r = reference ? capacityStep(reference.steps, reference.capacity)?.costs : undefined;
  if (!s || !r || s.serverMs === null || s.workersMs === null || s.generatorMs === null || !r.serverMs || cores < 1) return null;
  const serviceMs = r3(s.serverMs + s.workersMs + s.generatorMs);
  if (serviceMs <= 0) return null;
  return { cores, serviceMs, referenceMs: r.serverMs, ratio: Number(((cores * r.serverMs) / serviceMs).toPrecision(3)) };
}

export interface IdleReport {
  sessions: number;
  opened: number;
  rssBeforeMB: number;
  rssAfterMB: number;
  perSessionKB: number;
  /** Generator's view, for comparison. */
  generatorRssDeltaMB: number;
}

const measuredRuns = (runs: Array<RawResult | null>) => runs.filter((x): x is RawResult => x !== null && x.framesPerSecond > 0);

/** The raw throughput efficiency is measured against: the mean of the runs before and after the steps. */
export function rawFramesPerSecond(r: Pick<BenchReport, 'raw' | 'rawAfter'>): number | null {
  return meanRawFps([r.raw, r.rawAfter]);
}

export function meanRawFps(list: Array<RawResult | null>): number | null {
  const runs = measuredRuns(list);
  if (runs.length === 0) return null;
  return Math.round((runs.reduce((a, x) => a + x.framesPerSecond, 0) / runs.length) * 10) / 10;
}

/** A step's raw figure: the runs around it when measured (--raw-each-step), else those around all the steps. */
export function stepRawFps(step: StepReport, r: Pick<BenchReport, 'raw' | 'rawAfter'>): number | null {
  return step.rawAround.length > 0 ? meanRawFps(step.rawAround) : rawFramesPerSecond(r);
}

/** End-to-end analysed frames/s over the raw model throughput. */
export function efficiency(step: StepReport, rawFps: number | null): number | null {
  if (!rawFps || rawFps <= 0) return null;
  return Math.round((step.window.analysedPerSecond / rawFps) * 1000) / 1000;
}

/**
 * CPU per analysed frame over a step's window, ms. A process's CPU in % of
 * one core is 10 ms of CPU a second, so its cost per frame is cpu% × 10 ÷
 * frames/s. Unlike the efficiency, which the load generator's own CPU and
 * the machine's drifting speed pull down on shared cores, these say what
 * each part costs wherever it runs.
 */
export interface FrameCosts {
  serverMs: number | null;
  /** All workers together, model and their side of the IPC. */
  workersMs: number | null;
  generatorMs: number | null;
  /** The workers' CPU per frame in the raw runs: what the model itself costs, its IPC included. */
  modelAloneMs: number | null;
  /** serverMs ÷ modelAloneMs: what the server, its WebSocket and its side of the IPC add to the model's cost. */
  serverToModel: number | null;
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;

/** The workers' CPU per analysed frame in raw runs, ms: the mean over the runs. */
export function rawCpuMsPerFrame(list: Array<RawResult | null>): number | null {
  const runs = measuredRuns(list).filter((x) => x.workerUsage.length > 0);
  if (runs.length === 0) return null;
  const each = runs.map((x) => (x.workerUsage.reduce((a, w) => a + w.cpuPercent, 0) * 10) / x.framesPerSecond);
  return r3(each.reduce((a, x) => a + x, 0) / each.length);
}

export function frameCosts(step: StepReport, modelAloneMs: number | null): FrameCosts {
  const fps = step.window.analysedPerSecond;
  const per = (cpuPercent: number | undefined) => (cpuPercent === undefined || fps <= 0 ? null : r3((cpuPercent * 10) / fps));
  const serverMs = per(step.server?.cpuPercent);
  return {
    serverMs,
    workersMs: step.workers.length > 0 ? per(step.workers.reduce((a, w) => a + w.cpuPercent, 0)) : null,
    generatorMs: per(step.generator?.cpuPercent),
    modelAloneMs,
    serverToModel: serverMs !== null && modelAloneMs ? r3(serverMs / modelAloneMs) : null,
  };
}
