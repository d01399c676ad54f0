import { EventEmitter } from 'node:events';
import type { Logger } from '../utils/logger.js';
import { Worker, type WorkerOptions } from './worker.js';

export interface PoolOptions extends Omit<WorkerOptions, 'logger'> {
  size: number;
  maxRestarts: number;
  restartWindowMs: number;
  backoffMaxMs: number;
}

/** Why a worker was replaced: it died, did not answer in time, could not start, or broke the IPC protocol. */
export const RESTART_CAUSES = ['crash', 'timeout', 'start_failed', 'bad_reply'] as const;
export type RestartCause = (typeof RESTART_CAUSES)[number];

/**
 * The worker processes: a fixed number of slots, each holding one
 * long-lived process, started together, each replaced when it exits. Units
 * go to a worker through its own `run`; which unit goes to which worker, and
 * what happens to the units of a worker that died, is the scheduler's
 * (`handler/scheduler.ts`). A worker that breaks the IPC protocol is killed
 * and replaced too. Restarts beyond the intensity limit
 * (WORKER_MAX_RESTARTS within WORKER_RESTART_WINDOW_MS) back off
 * exponentially, so a model that cannot start does not spin a core.
 *
 * Emits `worker_ready` (a worker can take units) and `worker_exit`.
 */
export class WorkerPool extends EventEmitter {
  private readonly slots: Array<Worker | null>;
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

  /** Stop every worker: SHUTDOWN after the units it holds, SIGKILL if it lingers; none is restarted. */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.workers().map((w) => w.stop()));
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
    });
    return worker.start().then(
      () => {
        this.consecutiveBackoffs = 0;
        this.logger.info(
          { event: 'worker_start', worker: slot, workerPid: worker.pid, model: worker.info?.model, restarts: this.totalRestarts() },
          'worker ready',
        );
        this.emit('worker_ready', { slot });
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
