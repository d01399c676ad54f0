import { EventEmitter } from 'node:events';
import type { Logger } from '../utils/logger.js';
import type { AnalyseMeta } from './codec.js';
import type { ResultBody } from './messages.js';
import { Worker, WorkerRequestError, type WorkerOptions } from './worker.js';

export interface PoolOptions extends Omit<WorkerOptions, 'logger'> {
  size: number;
  maxRestarts: number;
  restartWindowMs: number;
  backoffMaxMs: number;
}

interface Job {
  meta: AnalyseMeta;
  frames: Buffer[];
  attempts: number;
  resolve: (r: ResultBody) => void;
  reject: (e: Error) => void;
}

/**
 * Units sent to a fast worker ahead of its answer: the next ones wait in
 * its channel, so the worker never idles on a round trip to the server
 * (several ms while the event loop is busy receiving frames). The faster
 * the model, the more of a unit's time the round trip is, hence the more
 * units ahead: 4 under 1 ms a unit (a trivial model), 2 under 5 ms, else
 * 1. Behind a slow unit another worker may free first, and a unit waiting
 * inside a worker is out of the scheduler's sight (docs/performance.md).
 */
const depthOf = (w: Worker) => (w.modelMsAvg < 1 ? 4 : w.modelMsAvg < 5 ? 2 : 1);

/** Why a worker was replaced: it died, did not answer in time, could not start, or broke the IPC protocol. */
export const RESTART_CAUSES = ['crash', 'timeout', 'start_failed', 'bad_reply'] as const;
export type RestartCause = (typeof RESTART_CAUSES)[number];

/**
 * A fixed number of worker slots, each holding one long-lived process that
 * analyses one unit at a time. A worker that dies is replaced; the unit it
 * held is retried once on another worker. A worker that breaks the IPC
 * protocol is killed and replaced too, and the unit it answered so is not
 * retried: it fails as a model error. Restarts beyond the intensity
 * limit (WORKER_MAX_RESTARTS within WORKER_RESTART_WINDOW_MS) back off
 * exponentially, so a model that cannot start does not spin a core.
 *
 * Emits `idle` whenever a worker can take a unit, `worker_exit` and
 * `worker_ready` for observers.
 */
export class WorkerPool extends EventEmitter {
  private readonly slots: Array<Worker | null>;
  private readonly queue: Job[] = [];
  private readonly restarts: number[] = [];
  private consecutiveBackoffs = 0;
  private closing = false;
  readonly restartCounts: Record<RestartCause, number> = { crash: 0, timeout: 0, start_failed: 0, bad_reply: 0 };

  constructor(
    private readonly opts: PoolOptions,
    private readonly logger: Logger,
  ) {
    super();
    this.slots = new Array(opts.size).fill(null);
  }

  get size(): number {
    return this.opts.size;
  }

  get readyCount(): number {
    return this.slots.filter((w) => w?.ready).length;
  }

  get idleCount(): number {
    let free = 0;
    for (const w of this.slots) if (w?.ready) free += Math.max(0, depthOf(w) - w.inFlight);
    return free - this.queue.length;
  }

  get busyCount(): number {
    return this.slots.filter((w) => w?.ready && w.busy).length;
  }

  workers(): Worker[] {
    return this.slots.filter((w): w is Worker => w !== null);
  }

  /** Start every slot; resolves when all are ready, rejects if none can start. */
  async start(): Promise<void> {
    const results = await Promise.allSettled(this.slots.map((_, i) => this.spawn(i)));
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failures.length === this.slots.length) {
      throw new Error(`no worker could start: ${failures[0].reason?.message ?? failures[0].reason}`);
    }
  }

  /** Analyse a unit on the next free worker. Rejects with WorkerRequestError. */
  run(meta: AnalyseMeta, frames: Buffer[]): Promise<ResultBody> {
    return new Promise((resolve, reject) => {
      this.queue.push({ meta, frames, attempts: 0, resolve, reject });
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const job of this.queue.splice(0)) job.reject(new WorkerRequestError('crash', 'worker pool closed'));
    await Promise.all(this.workers().map((w) => w.stop()));
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      // The ready worker with the fewest units in flight, so an idle worker is served first.
      let worker: Worker | null = null;
      for (const w of this.slots) if (w?.ready && w.inFlight < depthOf(w) && (!worker || w.inFlight < worker.inFlight)) worker = w;
      if (!worker) return;
      const job = this.queue.shift()!;
      job.attempts++;
      worker.run(job.meta, job.frames).then(
        (result) => {
          job.resolve(result);
          this.afterJob();
        },
        (err: WorkerRequestError) => {
          if (err.failure === 'crash' && job.attempts < 2 && !this.closing) {
            // The unit may not be at fault: give it one more worker.
            this.queue.unshift(job);
          } else {
            job.reject(err);
          }
          this.afterJob();
        },
      );
    }
  }

  private afterJob(): void {
    // Settle callbacks run first so the handler can hand over its next unit.
    queueMicrotask(() => {
      this.dispatch();
      if (this.idleCount > 0) this.emit('idle');
    });
  }

  private spawn(slot: number): Promise<void> {
    const worker = new Worker(slot, { ...this.opts, logger: this.logger });
    this.slots[slot] = worker;
    worker.on('exit', (code: number | null, signal: string | null) => {
      const cause: RestartCause | undefined = this.closing
        ? undefined
        : worker.info === null
          ? 'start_failed'
          : worker.timedOut
            ? 'timeout'
            : worker.badReply
              ? 'bad_reply'
              : 'crash';
      this.logger[this.closing ? 'info' : 'warn'](
        { event: 'worker_exit', worker: slot, workerPid: worker.pid, code, signal, cause, restarts: this.totalRestarts() },
        'worker exited',
      );
      this.emit('worker_exit', { slot, code, signal });
      if (this.slots[slot] === worker) this.slots[slot] = null;
      if (cause) this.scheduleRestart(slot, cause);
      this.dispatch();
    });
    return worker.start().then(
      () => {
        this.consecutiveBackoffs = 0;
        this.logger.info(
          { event: 'worker_start', worker: slot, workerPid: worker.pid, model: worker.info?.model, restarts: this.totalRestarts() },
          'worker ready',
        );
        this.emit('worker_ready', { slot });
        this.dispatch();
        if (this.idleCount > 0) this.emit('idle');
      },
      (err: Error) => {
        this.logger.error({ event: 'error', worker: slot, err }, 'worker failed to start');
        worker.kill();
        throw err;
      },
    );
  }

  private totalRestarts(): number {
    return RESTART_CAUSES.reduce((n, cause) => n + this.restartCounts[cause], 0);
  }

  private scheduleRestart(slot: number, cause: RestartCause): void {
    this.restartCounts[cause]++;
    const now = Date.now();
    this.restarts.push(now);
    while (this.restarts.length > 0 && now - this.restarts[0] > this.opts.restartWindowMs) this.restarts.shift();
    let delay = 0;
    if (this.restarts.length > this.opts.maxRestarts) {
      this.consecutiveBackoffs++;
      delay = Math.min(this.opts.backoffMaxMs, 250 * 2 ** this.consecutiveBackoffs);
      this.logger.error(
        { event: 'worker_backoff', worker: slot, delayMs: delay, restartsInWindow: this.restarts.length },
        'workers are restarting too often; backing off',
      );
    }
    const timer = setTimeout(() => {
      if (this.closing) return;
      this.spawn(slot).catch(() => {
        /* logged in spawn; its exit schedules the next attempt */
      });
    }, delay);
    timer.unref();
  }
}
