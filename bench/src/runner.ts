/**
 * Runs a benchmark: the raw model throughput first (workers alone), then
 * one step per N, each against a fresh server process (so no step inherits
 * another's throttling, queues or heap), and builds the report. With
 * `reference`, every step runs a second time, right after, against the
 * single-process reference server: the same N, seed and phases.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { facesFrames, ROOT, type Faces } from './frames.js';
import { BenchSession, frameMessages, runLoad, StepRecorder } from './load-generator.js';
import { ProcessSampler } from './process-sampler.js';
import { measureRawThroughput, type RawResult } from './raw-throughput.js';
import {
  buildStepReport,
  capacityStep,
  cpuCeiling,
  efficiency,
  frameCosts,
  rawCpuMsPerFrame,
  rawFramesPerSecond,
  stepRawFps,
  type BenchReport,
  type Criteria,
  type IdleReport,
  type StepReport,
} from './report.js';
import { searchCapacity } from './capacity-search.js';
import { FULL_SPREAD_S } from './phases.js';
import { ReferenceServer } from './reference-process.js';
import { ServerUnderTest, type BenchTarget } from './server-process.js';
import { renderChart } from './svg-chart.js';
import { readProcessStats } from '../../dist/utils/process-stats.js';

export const BENCH_MODELS = path.join(ROOT, 'bench', 'models');
export const DEFAULT_MODEL_SPEC = 'jipjung_model.default_model:ConcentrationModel';
export const NOOP_MODEL_SPEC = 'noop_model:NoopModel';

export interface RunOptions {
  model: 'default' | 'noop';
  /** Fixed N (one step per entry). */
  sessions: number[];
  findCapacity: boolean;
  /** Idle-memory mode: open this many sessions that send nothing. */
  idle: number | null;
  durationS: number;
  /** Seconds each session lasts before a new one replaces it (null: the whole step). */
  lifetimeS: number | null;
  rampS: number;
  settleS: number;
  workers: number;
  criteria: Criteria;
  /** Seconds of raw model throughput measurement (0: skip). */
  rawSeconds: number;
  /** Measure the raw throughput between steps too, so that each step is compared with the machine's speed around it. */
  rawEachStep: boolean;
  rawWarmupS: number;
  /** find-capacity: first N (null: half the raw throughput's worth of sessions, at most 200). */
  start: number | null;
  maxSessions: number;
  growth: number;
  /** find-capacity stops when the gap between held and failed N is within this fraction. */
  resolution: number;
  /** find-capacity runs a failed step again when other processes took more than this % of a core during it. */
  maxOthersPercent: number;
  obeyThrottle: boolean;
  /** Seed of the sessions' phases in the unit period. */
  seed: number;
  /** Phases are uniform over the first this many seconds of the unit period (1: all of it; 0.2: a class starting together). */
  phaseSpreadS: number;
  /** What the sessions' cameras show (see `FACES` and `facesFrames`). */
  faces: Faces;
  /** Run every step against the single-process reference server as well. */
  reference: boolean;
  /** Wrap the model to report its time per unit (for the added latency). */
  modelTiming: boolean;
  serverEnv: Record<string, string>;
  serverNodeArgs: string[];
  /** Checkout whose server to run (null: this one). */
  serverRoot: string | null;
  quiet: boolean;
  command: string;
}

export const DEFAULTS: RunOptions = {
  model: 'default',
  sessions: [],
  findCapacity: false,
  idle: null,
  durationS: 20,
  lifetimeS: null,
  rampS: 5,
  settleS: 2,
  workers: Math.max(1, os.availableParallelism()),
  criteria: { targetMs: 500, percentile: 95, maxShedFraction: 0.01 },
  rawSeconds: 10,
  rawEachStep: false,
  rawWarmupS: 2,
  start: null,
  maxSessions: 3000,
  growth: 1.5,
  resolution: 0.05,
  maxOthersPercent: 5,
  obeyThrottle: true,
  seed: 1,
  phaseSpreadS: FULL_SPREAD_S,
  faces: 'still',
  reference: false,
  modelTiming: true,
  serverEnv: {},
  serverNodeArgs: [],
  serverRoot: null,
  quiet: false,
  command: '',
};

/** MODEL, MODEL_PATH and MODEL_OPTIONS for a run. */
export function modelSettings(o: Pick<RunOptions, 'model' | 'modelTiming'>): { spec: string; modelPath?: string; options: string; inner: string } {
  const inner = o.model === 'noop' ? NOOP_MODEL_SPEC : DEFAULT_MODEL_SPEC;
  if (o.modelTiming) {
    return { spec: 'timed_model:TimedModel', modelPath: BENCH_MODELS, options: JSON.stringify({ model: inner, options: {} }), inner };
  }
  return { spec: inner, modelPath: o.model === 'noop' ? BENCH_MODELS : undefined, options: '{}', inner };
}

export class Bench {
  private readonly images: Buffer[];
  private readonly log: (msg: string) => void;
  private readonly model: ReturnType<typeof modelSettings>;
  /** The latest raw run, which stands before the next step. */
  private lastRaw: RawResult | null = null;

  constructor(private readonly o: RunOptions) {
    this.log = o.quiet ? () => {} : (msg) => process.stderr.write(`[bench] ${msg}\n`);
    this.model = modelSettings(o);
    this.images = facesFrames(o.faces);
  }

  async run(): Promise<BenchReport> {
    const o = this.o;
    const report: BenchReport = {
      tool: 'jipjung-bench',
      version: 1,
      startedAt: new Date().toISOString(),
      command: o.command,
      source: sourceState(o.serverRoot ?? ROOT),
      machine: {
        cpus: os.availableParallelism(),
        cpuModel: os.cpus()[0]?.model ?? 'unknown',
        memoryGB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
        node: process.version,
        loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100),
        platform: `${os.type()} ${os.release()}`,
      },
      model: { name: o.model, spec: this.model.inner, options: '{}', timing: o.modelTiming },
      workers: o.workers,
      mode: o.idle !== null ? 'idle' : o.findCapacity ? 'capacity' : 'fixed',
      phases: { seed: o.seed, spreadS: o.phaseSpreadS },
      faces: o.faces,
      criteria: o.criteria,
      raw: null,
      rawAfter: null,
      steps: [],
      capacity: null,
      reference: o.reference && o.idle === null ? { server: `bench/reference/server.py, ${this.model.inner}`, steps: [], capacity: null, cpuCeiling: null } : null,
      idle: null,
    };
    if (o.idle !== null) {
      report.idle = await this.idle(o.idle);
      return report;
    }
    report.raw = await this.raw('before the steps');
    this.lastRaw = report.raw;
    const ref = report.reference;
    if (o.findCapacity) {
      const start = o.start ?? Math.min(200, Math.max(2, Math.round((report.raw ? report.raw.framesPerSecond / 5 : 20) * 0.5)));
      ({ steps: report.steps, capacity: report.capacity } = await this.findCapacity('service', start));
      if (ref) {
        // One process analyses what one worker would: its search starts at a worker's share.
        ({ steps: ref.steps, capacity: ref.capacity } = await this.findCapacity('reference', o.start ?? Math.max(2, Math.round(start / o.workers))));
      }
    } else {
      for (const n of o.sessions) {
        report.steps.push(await this.step(n));
        if (ref) ref.steps.push(await this.loadStep(n, 'reference'));
      }
    }
    if (o.rawSeconds > 0 && report.steps.length > 0) report.rawAfter = o.rawEachStep ? this.lastRaw : await this.raw('after the steps');
    const modelAloneMs = rawCpuMsPerFrame([report.raw, report.rawAfter]);
    for (const s of report.steps) {
      const alone = s.rawAround.length > 0 ? rawCpuMsPerFrame(s.rawAround) : modelAloneMs;
      if (alone !== null) s.costs = frameCosts(s, alone);
    }
    if (report.capacity) {
      const best = capacityStep(report.steps, report.capacity)!;
      report.capacity.rawFramesPerSecond = stepRawFps(best, report);
      report.capacity.efficiency = efficiency(best, report.capacity.rawFramesPerSecond);
      report.capacity.serverToModel = best.costs?.serverToModel ?? null;
    }
    if (ref) {
      // The reference's one process is its server and its model: its CPU a frame is all it costs.
      for (const s of ref.steps) s.costs = frameCosts(s, null);
      ref.cpuCeiling = cpuCeiling(report.machine.cpus, report.steps, report.capacity, ref);
    }
    return report;
  }

  private async raw(label: string): Promise<RawResult | null> {
    const o = this.o;
    if (o.rawSeconds <= 0) return null;
    this.log(`raw model throughput ${label}: ${o.workers} workers, ${o.rawWarmupS} s warm-up + ${o.rawSeconds} s, no server`);
    const raw = await measureRawThroughput({
      workers: o.workers,
      model: this.model.spec,
      modelPath: this.model.modelPath,
      modelOptions: this.model.options,
      images: this.images,
      seconds: o.rawSeconds,
      warmupSeconds: o.rawWarmupS,
    });
    this.log(`raw model throughput ${label}: ${raw.framesPerSecond} frames/s`);
    return raw;
  }

  /** Raise N from `start` while steps hold, then bisect: the largest N that held against `target`. */
  private async findCapacity(target: Target, start: number): Promise<{ steps: StepReport[]; capacity: BenchReport['capacity'] }> {
    const run = (n: number) => (target === 'service' ? this.step(n) : this.loadStep(n, target));
    const { steps, best } = await searchCapacity(run, start, this.o, this.log);
    return {
      steps,
      capacity: best ? { sessions: best.sessions, analysedPerSecond: best.window.analysedPerSecond, efficiency: null, serverToModel: null, rawFramesPerSecond: null } : null,
    };
  }

  /** A fresh server under test, as the options say. */
  private startServer(): Promise<ServerUnderTest> {
    const o = this.o;
    return ServerUnderTest.start({
      workers: o.workers,
      model: this.model.spec,
      modelPath: this.model.modelPath,
      modelOptions: this.model.options,
      env: o.serverEnv,
      nodeArgs: o.serverNodeArgs,
      root: o.serverRoot ?? undefined,
    });
  }

  /** A fresh reference server, with the model the service's workers run (without the timing wrapper). */
  private startReference(): Promise<ReferenceServer> {
    return ReferenceServer.start({ model: this.model.inner, modelPath: this.o.model === 'noop' ? BENCH_MODELS : undefined });
  }

  /** One step, then (--raw-each-step) the raw throughput again, which also stands before the next step. */
  async step(n: number): Promise<StepReport> {
    const step = await this.loadStep(n, 'service');
    if (this.o.rawEachStep && this.o.rawSeconds > 0) {
      const after = await this.raw(`after N=${n}`);
      step.rawAround = [this.lastRaw, after].filter((x): x is RawResult => x !== null);
      this.lastRaw = after;
    }
    return step;
  }

  /** A fresh server (the service, or the reference), N sessions, measurement, summaries. */
  private async loadStep(n: number, target: Target): Promise<StepReport> {
    const o = this.o;
    const label = target === 'service' ? `N=${n}` : `N=${n} reference`;
    this.log(target === 'service' ? `${label}: starting the server (${o.workers} workers, model ${o.model})` : `${label}: starting the reference server (model ${o.model})`);
    const server: BenchTarget = target === 'service' ? await this.startServer() : await this.startReference();
    try {
      let sampler: ProcessSampler | null = null;
      let usage = null;
      let metricsBefore: string | null = null;
      let metricsAfter: string | null = null;
      this.log(`${label}: ramp ${o.rampS} s, settle ${o.settleS} s, measure ${o.durationS} s, phases within ${o.phaseSpreadS} s`);
      const load = await runLoad({
        url: server.url,
        sessions: n,
        images: this.images,
        rampMs: o.rampS * 1000,
        settleMs: o.settleS * 1000,
        durationMs: o.durationS * 1000,
        lifetimeMs: (o.lifetimeS ?? 0) * 1000,
        obeyThrottle: o.obeyThrottle,
        seed: o.seed,
        phaseSpreadS: o.phaseSpreadS,
        handshakeTimeoutMs: 15_000,
        onWindow: async (phase) => {
          if (phase === 'start') {
            metricsBefore = await server.metrics();
            sampler = new ProcessSampler(server.pid, () => server.workerPids());
            sampler.start();
          } else {
            usage = sampler!.stop();
            metricsAfter = await server.metrics();
          }
        },
      });
      const step = buildStepReport({
        sessions: n,
        lifetimeS: o.lifetimeS,
        load,
        usage,
        metricsBefore,
        metricsAfter,
        serverEvents: server.events(),
        serverExited: server.exited !== null,
        criteria: o.criteria,
      });
      const l = step.latencyMs;
      this.log(
        `${label}: p50 ${l?.p50 ?? '–'} p95 ${l?.p95 ?? '–'} p99 ${l?.p99 ?? '–'} ms, ${step.window.analysedPerSecond} analysed frames/s, ` +
          `${(step.window.shedFraction * 100).toFixed(1)}% shed: ${step.held ? 'held' : `did not hold (${step.reasons.join(', ')})`}`,
      );
      return step;
    } finally {
      await server.stop();
    }
  }

  /** Server RSS cost of sessions that are open and send nothing. */
  private async idle(n: number): Promise<IdleReport> {
    const server = await this.startServer();
    const rss = async (pid: number) => {
      const samples: number[] = [];
      for (let i = 0; i < 5; i++) {
        await new Promise((r) => setTimeout(r, 1000));
        samples.push(readProcessStats(pid)?.rssBytes ?? 0);
      }
      return samples.reduce((a, b) => a + b, 0) / samples.length / 1024 ** 2;
    };
    try {
      // Warm the server's code paths (upgrade, hello, bye) before the baseline.
      await this.openSessions(server.url, 20).then((s) => Promise.all(s.map((x) => x.finish())));
      const genBefore = process.memoryUsage().rss / 1024 ** 2;
      const before = await rss(server.pid);
      this.log(`idle: server RSS ${before.toFixed(1)} MB; opening ${n} sessions`);
      const sessions = await this.openSessions(server.url, n);
      const opened = sessions.filter((s) => s.openError === null).length;
      const after = await rss(server.pid);
      const genAfter = process.memoryUsage().rss / 1024 ** 2;
      this.log(`idle: ${opened} open, server RSS ${after.toFixed(1)} MB`);
      await Promise.all(sessions.map((s) => s.finish()));
      return {
        sessions: n,
        opened,
        rssBeforeMB: Math.round(before * 10) / 10,
        rssAfterMB: Math.round(after * 10) / 10,
        perSessionKB: opened > 0 ? Math.round(((after - before) * 1024) / opened * 10) / 10 : 0,
        generatorRssDeltaMB: Math.round((genAfter - genBefore) * 10) / 10,
      };
    } finally {
      await server.stop();
    }
  }

  private async openSessions(url: string, n: number): Promise<BenchSession[]> {
    const recorder = new StepRecorder();
    const sessions: BenchSession[] = [];
    const messages = frameMessages(this.images);
    for (let i = 0; i < n; i += 50) {
      const batch = Array.from(
        { length: Math.min(50, n - i) },
        (_, j) => new BenchSession(i + j, { url, messages, recorder, obeyThrottle: true, handshakeTimeoutMs: 15_000 }),
      );
      await Promise.all(batch.map((s) => s.open()));
      sessions.push(...batch);
    }
    return sessions;
  }
}

function sourceState(root: string): BenchReport['source'] {
  const git = (args: string[]) => {
    const r = spawnSync('git', args, { cwd: root, encoding: 'utf8' });
    return r.status === 0 ? r.stdout.trim() : null;
  };
  const changed = git(['status', '--porcelain', '--', 'src', 'model', 'bench/models', 'bench/reference']);
  return { commit: git(['rev-parse', '--short', 'HEAD']), changed: changed ? changed.split('\n').map((l) => l.trim()) : [] };
}

type Target = 'service' | 'reference';

export function runBench(o: RunOptions): Promise<BenchReport> {
  return new Bench(o).run();
}

/** Write the JSON report and the SVG chart next to it; returns the SVG's path (null without steps). */
export function writeOutputs(report: BenchReport, jsonPath: string): string | null {
  fs.mkdirSync(path.dirname(jsonPath), { recursive: true });
  fs.writeFileSync(jsonPath, JSON.stringify(report, null, 2) + '\n');
  if (report.steps.length === 0) return null; // idle mode: nothing to chart against N
  const svgPath = jsonPath.replace(/\.json$/i, '') + '.svg';
  const title =
    report.mode === 'capacity'
      ? `jipjung capacity, model ${report.model.name}, ${report.workers} workers${report.capacity ? `: ${report.capacity.sessions} sessions` : ''}`
      : `jipjung bench, model ${report.model.name}, ${report.workers} workers`;
  fs.writeFileSync(
    svgPath,
    renderChart(
      report.steps.map((s) => ({
        sessions: s.sessions,
        p50: s.latencyMs?.p50 ?? null,
        p95: s.latencyMs?.p95 ?? null,
        p99: s.latencyMs?.p99 ?? null,
        analysedPerSecond: s.window.analysedPerSecond,
        held: s.held,
      })),
      { title, targetMs: report.criteria.targetMs, rawFramesPerSecond: rawFramesPerSecond(report) ?? undefined },
    ),
  );
  return svgPath;
}
