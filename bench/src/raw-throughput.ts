/**
 * The model's own speed on this machine: one worker process per core, fed
 * through the real IPC (the server's Worker class and codec) as fast as it
 * answers, with no server, no WebSocket and no queueing in between. Each
 * worker plays two sessions: units of `batchFrames` frames, cycling the same
 * captures the load generator sends, with the context carried from unit to
 * unit and a window closed every `windowFrames`, as in a real session. Two,
 * so that one session's next unit is already waiting in the channel while
 * the worker analyses the other's: the worker never idles on a round trip,
 * and the figure is the model's own limit.
 */
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import type { AnalyseMeta } from '../../dist/ipc/codec.js';
import { findPython } from '../../dist/ipc/python.js';
import { Worker } from '../../dist/ipc/worker.js';
import { createLogger } from '../../dist/utils/logger.js';
import { LatencyHistogram, type LatencySummary } from './histogram.js';
import { ProcessSampler, type ProcessUsage } from './process-sampler.js';

export interface RawOptions {
  workers: number;
  model: string;
  modelPath?: string;
  modelOptions: string;
  images: Buffer[];
  /** Measured seconds, after a warm-up. */
  seconds: number;
  warmupSeconds: number;
  batchFrames?: number;
  windowFrames?: number;
}

export interface RawResult {
  workers: number;
  seconds: number;
  units: number;
  frames: number;
  /** Frames analysed per second, all workers together. */
  framesPerSecond: number;
  /** Model time per unit as the worker measured it (RESULT.modelMs). */
  modelMsPerUnit: LatencySummary | null;
  /** Request → answer per unit, as seen by the Worker class: the model's time on the other session's unit, then on this one. */
  roundTripMsPerUnit: LatencySummary | null;
  workerUsage: ProcessUsage[];
  /** CPU of other processes on the machine meanwhile (the bench process itself excluded), % of one core. */
  othersCpuPercent: number | null;
  loadAverage: number | null;
}

/** A logger for the workers' own output: warnings to stderr, nothing else. */
function quietLogger() {
  const sink = new Writable({
    write(chunk, _enc, cb) {
      const line = JSON.parse(chunk.toString());
      if (line.level === 'warn' || line.level === 'error' || line.level === 'fatal') process.stderr.write(`[raw worker] ${line.msg}\n`);
      cb();
    },
  });
  return createLogger('warn', sink);
}

export async function measureRawThroughput(o: RawOptions): Promise<RawResult> {
  const batchFrames = o.batchFrames ?? 5;
  const windowFrames = o.windowFrames ?? 50;
  const python = findPython(process.env.PYTHON);
  const logger = quietLogger();
  const workers = Array.from(
    { length: o.workers },
    (_, slot) =>
      new Worker(slot, {
        python,
        model: o.model,
        modelOptions: o.modelOptions,
        modelPath: o.modelPath,
        startTimeoutMs: 120_000,
        requestTimeoutMs: 60_000,
        logger,
      }),
  );
  try {
    await Promise.all(workers.map((w) => w.start()));
    const modelMs = new LatencyHistogram();
    const roundTrip = new LatencyHistogram();
    let units = 0;
    let frames = 0;
    /** Per worker: frames answered in the window over the span from its first send to its last answer in it. */
    let framesPerSecond = 0;
    const t0 = performance.now();
    const measureFrom = t0 + o.warmupSeconds * 1000;
    const measureTo = measureFrom + o.seconds * 1000;
    const sampler = new ProcessSampler(-1, () => workers.map((w) => w.pid).filter((p): p is number => p !== undefined));
    let sampling = false;

    const loop = async (w: Worker, player: number) => {
      let context: unknown = null;
      let seq = 0;
      const captureBase = Date.now();
      let first = Infinity;
      let last = -Infinity;
      let mine = 0;
      while (performance.now() < measureTo) {
        const now = performance.now();
        if (!sampling && now >= measureFrom) {
          sampling = true;
          sampler.start();
        }
        const images: Buffer[] = [];
        const meta: AnalyseMeta = {
          session: `raw-${w.slot}-${player}`,
          closesWindow: (seq + batchFrames) % windowFrames === 0,
          batchFrames,
          windowFrames,
          fps: 5,
          frames: [],
          context,
        };
        for (let i = 0; i < batchFrames; i++, seq++) {
          images.push(o.images[seq % o.images.length]);
          meta.frames.push({ seq, captureTs: captureBase + seq * 200, format: 1, width: 640, height: 480 });
        }
        const sentAt = performance.now();
        const result = await w.run(meta, images);
        const doneAt = performance.now();
        context = result.context ?? null;
        // A unit counts when it was both sent and answered inside the window.
        if (sentAt >= measureFrom && doneAt <= measureTo) {
          const n = result.frames.filter((f) => f.analysed).length;
          units++;
          frames += n;
          mine += n;
          first = Math.min(first, sentAt);
          last = doneAt;
          modelMs.record(result.modelMs);
          roundTrip.record(doneAt - sentAt);
        }
      }
      if (last > first) framesPerSecond += (mine / (last - first)) * 1000;
    };
    await Promise.all(workers.flatMap((w) => [loop(w, 0), loop(w, 1)]));
    const usage = sampling ? sampler.stop() : null;
    return {
      workers: o.workers,
      seconds: o.seconds,
      units,
      frames,
      framesPerSecond: Math.round(framesPerSecond * 10) / 10,
      modelMsPerUnit: modelMs.summary(),
      roundTripMsPerUnit: roundTrip.summary(),
      workerUsage: usage?.workers ?? [],
      othersCpuPercent: usage?.othersCpuPercent ?? null,
      loadAverage: usage?.loadAverage ?? null,
    };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
}
