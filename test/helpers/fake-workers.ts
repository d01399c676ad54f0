/**
 * Worker processes without Python, for the unit tier: each fake worker keeps
 * what it was sent (units opened, frames, closes) and does the work, fails
 * or dies when the test says so, oldest first, as a real worker works
 * through its channel in order.
 */
import { EventEmitter } from 'node:events';
import type { SchedulerStream, SchedulerWorker, WorkerSet } from '../../src/handler/scheduler.js';
import type { FrameMeta, OpenMeta } from '../../src/ipc/codec.js';
import type { FrameDoneBody, ResultBody } from '../../src/ipc/messages.js';
import { WorkerRequestError, type WorkerFailure } from '../../src/ipc/worker.js';

/** A unit opened at a fake worker, as far as it has been sent. */
export interface FakeUnit {
  meta: OpenMeta;
  frames: FrameMeta[];
  images: Buffer[];
  /** Set once the unit was closed. */
  closesWindow: boolean | null;
}

type Op =
  | { kind: 'frame'; unit: FakeUnit; seq: number; resolve(done: FrameDoneBody): void; reject(err: Error): void }
  | { kind: 'close'; unit: FakeUnit; resolve(result: ResultBody): void; reject(err: Error): void };

export interface AnswerOptions {
  /** Which frames the model could not decode (by index in the unit). */
  undecodable?: number[];
  score?: number;
  modelMs?: number;
  frameMs?: number;
}

export class FakeWorker implements SchedulerWorker {
  ready = true;
  /** Infinity until the first frame is done, as a real worker reports it. */
  frameMsAvg = Infinity;
  /** A fake close costs nothing: look-ahead follows `frameMsAvg` alone. */
  closeMsAvg = 0;
  /** Frames and closes sent and not done yet, oldest first. */
  readonly ops: Op[] = [];
  /** Every unit ever opened at this worker, in order. */
  readonly units: FakeUnit[] = [];

  constructor(readonly name: string) {}

  open(meta: OpenMeta): SchedulerStream {
    const unit: FakeUnit = { meta, frames: [], images: [], closesWindow: null };
    this.units.push(unit);
    return {
      frame: (frameMeta, image) => {
        unit.frames.push(frameMeta);
        unit.images.push(image);
        return new Promise((resolve, reject) => this.ops.push({ kind: 'frame', unit, seq: frameMeta.seq, resolve, reject }));
      },
      close: (closesWindow) => {
        unit.closesWindow = closesWindow;
        return new Promise((resolve, reject) => this.ops.push({ kind: 'close', unit, resolve, reject }));
      },
    };
  }

  /** Frames sent and not done yet. */
  get framesPending(): number {
    return this.ops.filter((o) => o.kind === 'frame').length;
  }

  /** Do the oldest frame or close pending. */
  step(options: AnswerOptions = {}): Op {
    const op = this.take();
    if (op.kind === 'frame') {
      op.resolve({ seq: op.seq, modelMs: options.frameMs ?? 5 });
      return op;
    }
    const u = op.unit;
    const undecodable = new Set(options.undecodable ?? []);
    op.resolve({
      frames: u.frames.map((_, i) => ({ analysed: !undecodable.has(i) })),
      batch: { score: options.score ?? 80, state: 'focused', signals: {} },
      window: u.closesWindow ? { score: options.score ?? 80, state: 'focused', signals: {} } : null,
      context: { lastSeq: u.frames.at(-1)?.seq ?? null, previous: u.meta.context },
      modelMs: options.modelMs ?? 10,
    });
    return op;
  }

  /** Fail the oldest pending frame or close as the model or a timeout would. */
  fail(failure: WorkerFailure = 'model'): FakeUnit {
    const op = this.take();
    op.reject(new WorkerRequestError(failure, `${failure} in a fake worker`));
    return op.unit;
  }

  /** The process died: everything it holds fails as a crash, and it takes no more. */
  crash(): FakeUnit[] {
    this.ready = false;
    const lost = this.ops.splice(0);
    for (const op of lost) op.reject(new WorkerRequestError('crash', 'worker exited (fake)'));
    return [...new Set(lost.map((op) => op.unit))];
  }

  private take(): Op {
    const op = this.ops.shift();
    if (!op) throw new Error(`${this.name} holds nothing to do`);
    return op;
  }
}

export class FakeWorkers extends EventEmitter implements WorkerSet {
  readonly list: FakeWorker[];

  constructor(n: number) {
    super();
    this.list = Array.from({ length: n }, (_, i) => new FakeWorker(`w${i}`));
  }

  workers(): readonly FakeWorker[] {
    return this.list;
  }

  /** A worker (re)started and can take frames. */
  ready(worker: FakeWorker): void {
    worker.ready = true;
    this.emit('worker_ready', {});
  }

  /** Frames and closes sent and not done, over all workers. */
  get pendingCount(): number {
    return this.list.reduce((n, w) => n + w.ops.length, 0);
  }
}

/** Let promise callbacks (answers reaching the scheduler) run. */
export const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Work `w` step by step, letting the scheduler send more in between, until a unit's close is answered; that unit. */
export async function answerUnit(w: FakeWorker, options: AnswerOptions = {}): Promise<FakeUnit> {
  for (;;) {
    await settle();
    const op = w.step(options);
    if (op.kind === 'close') {
      await settle();
      return op.unit;
    }
  }
}

/** A clock the test moves by hand. */
export function fakeClock(start = 1000) {
  const clock = { t: start, now: () => clock.t, advance: (ms: number) => void (clock.t += ms) };
  return clock;
}
