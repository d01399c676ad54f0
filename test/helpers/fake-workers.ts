/**
 * Worker processes without Python, for the unit tier: each fake worker keeps
 * the requests it was sent and answers, fails or dies when the test says so,
 * oldest request first, as a real worker answers in order.
 */
import { EventEmitter } from 'node:events';
import type { SchedulerWorker, WorkerSet } from '../../src/handler/scheduler.js';
import type { AnalyseMeta } from '../../src/ipc/codec.js';
import type { ResultBody } from '../../src/ipc/messages.js';
import { WorkerRequestError, type WorkerFailure } from '../../src/ipc/worker.js';

export interface Request {
  meta: AnalyseMeta;
  frames: Buffer[];
  resolve(result: ResultBody): void;
  reject(err: Error): void;
}

export interface AnswerOptions {
  /** Which frames the model could not decode (by index in the unit). */
  undecodable?: number[];
  score?: number;
  modelMs?: number;
}

export class FakeWorker implements SchedulerWorker {
  ready = true;
  /** Infinity until the first answer, as a real worker reports it. */
  modelMsAvg = Infinity;
  readonly pending: Request[] = [];
  /** Every request ever sent to this worker, in order. */
  readonly received: AnalyseMeta[] = [];

  constructor(readonly name: string) {}

  run(meta: AnalyseMeta, frames: Buffer[]): Promise<ResultBody> {
    this.received.push(meta);
    return new Promise((resolve, reject) => this.pending.push({ meta, frames, resolve, reject }));
  }

  /** Answer the oldest request with a result whose context names the unit's last seq. */
  answer(options: AnswerOptions = {}): AnalyseMeta {
    const r = this.take();
    const undecodable = new Set(options.undecodable ?? []);
    const seqs = r.meta.frames.map((f) => f.seq);
    r.resolve({
      frames: r.meta.frames.map((_, i) => ({ analysed: !undecodable.has(i) })),
      batch: { score: options.score ?? 80, state: 'focused', signals: {} },
      window: r.meta.closesWindow ? { score: options.score ?? 80, state: 'focused', signals: {} } : null,
      context: { lastSeq: seqs.at(-1) ?? null, previous: r.meta.context },
      modelMs: options.modelMs ?? 10,
    });
    return r.meta;
  }

  /** Fail the oldest request as the model or a timeout would. */
  fail(failure: WorkerFailure = 'model'): AnalyseMeta {
    const r = this.take();
    r.reject(new WorkerRequestError(failure, `${failure} in a fake worker`));
    return r.meta;
  }

  /** The process died: every request it holds fails as a crash, and it takes no more. */
  crash(): AnalyseMeta[] {
    this.ready = false;
    const lost = this.pending.splice(0);
    for (const r of lost) r.reject(new WorkerRequestError('crash', 'worker exited (fake)'));
    return lost.map((r) => r.meta);
  }

  private take(): Request {
    const r = this.pending.shift();
    if (!r) throw new Error(`${this.name} holds no request`);
    return r;
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

  /** A worker (re)started and can take units. */
  ready(worker: FakeWorker): void {
    worker.ready = true;
    this.emit('worker_ready', {});
  }

  /** Requests sent and not answered, over all workers. */
  get pendingCount(): number {
    return this.list.reduce((n, w) => n + w.pending.length, 0);
  }
}

/** Let promise callbacks (answers reaching the scheduler) run. */
export const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A clock the test moves by hand. */
export function fakeClock(start = 1000) {
  const clock = { t: start, now: () => clock.t, advance: (ms: number) => void (clock.t += ms) };
  return clock;
}
