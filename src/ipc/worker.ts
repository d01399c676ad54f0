import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import path from 'node:path';
import readline from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from '../utils/logger.js';
import { Decoder, encode, IPC_PROTOCOL_VERSION, MessageType, type AnalyseMeta, type Message, type ResultBody } from './codec.js';
import { MODEL_DIR } from './python.js';

export interface WorkerOptions {
  python: string;
  model: string;
  modelOptions: string;
  modelPath?: string;
  startTimeoutMs: number;
  requestTimeoutMs: number;
  logger: Logger;
}

export type WorkerFailure = 'crash' | 'timeout' | 'model';

/** Why a request did not produce a result. */
export class WorkerRequestError extends Error {
  override name = 'WorkerRequestError';
  constructor(
    readonly failure: WorkerFailure,
    message: string,
  ) {
    super(message);
  }
}

interface Pending {
  resolve: (r: ResultBody) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * One Python worker process. Requests go out on fd 3 and answers come back
 * on fd 4; stdout and stderr are logged line by line. Emits `exit` once.
 */
export class Worker extends EventEmitter {
  readonly slot: number;
  private child: ChildProcess | null = null;
  private input: Writable | null = null;
  private decoder = new Decoder();
  private pending = new Map<number, Pending>();
  private nextId = 1;
  private exited = false;
  ready = false;
  /** Set when the server killed the process because a request timed out. */
  timedOut = false;
  info: { model: string; version: string; pid: number } | null = null;

  constructor(
    slot: number,
    private readonly opts: WorkerOptions,
  ) {
    super();
    this.slot = slot;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Requests sent and not answered yet. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Smoothed model time per unit (RESULT.modelMs), ms; Infinity before the first answer. */
  modelMsAvg = Infinity;

  get busy(): boolean {
    return this.pending.size > 0;
  }

  /** Spawn and wait for READY; rejects on INIT_FAILED, exit or timeout. */
  start(): Promise<void> {
    const { python, model, modelOptions, modelPath, logger } = this.opts;
    const pythonPath = [modelPath, MODEL_DIR, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter);
    const child = spawn(python, ['-m', 'jipjung_model.worker', '--model', model, '--options', modelOptions], {
      cwd: MODEL_DIR,
      env: {
        ...process.env,
        PYTHONPATH: pythonPath,
        PYTHONUNBUFFERED: '1',
        PYTHONDONTWRITEBYTECODE: '1',
        OMP_NUM_THREADS: '1',
        OPENBLAS_NUM_THREADS: '1',
        MKL_NUM_THREADS: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
    });
    this.child = child;
    this.input = child.stdio[3] as Writable;
    const output = child.stdio[4] as Readable;
    const log = logger.child({ worker: this.slot, workerPid: child.pid });
    for (const [stream, level] of [
      [child.stdout!, 'info'],
      [child.stderr!, 'warn'],
    ] as const) {
      readline.createInterface({ input: stream }).on('line', (line) => log[level]({ event: 'worker_output', stream: level === 'info' ? 'stdout' : 'stderr' }, line));
    }
    // EPIPE when the child dies mid-write is reported by the exit path.
    this.input.on('error', () => {});
    output.on('error', () => {});

    return new Promise<void>((resolve, reject) => {
      const startTimer = setTimeout(() => {
        reject(new Error(`worker did not become ready within ${this.opts.startTimeoutMs} ms`));
        this.kill();
      }, this.opts.startTimeoutMs);
      output.on('data', (chunk: Buffer) => {
        let messages: Message[];
        try {
          messages = this.decoder.push(chunk);
        } catch (err) {
          log.error({ event: 'error', err }, 'corrupt IPC stream from worker');
          this.kill();
          return;
        }
        for (const m of messages) {
          if (m.type === MessageType.Ready && m.body.protocol !== IPC_PROTOCOL_VERSION) {
            clearTimeout(startTimer);
            reject(new Error(`worker speaks IPC protocol ${m.body.protocol}, the server ${IPC_PROTOCOL_VERSION}: the model package and the server do not match`));
            this.kill();
          } else if (m.type === MessageType.Ready) {
            clearTimeout(startTimer);
            this.ready = true;
            this.info = { model: m.body.model, version: m.body.version, pid: m.body.pid };
            resolve();
          } else if (m.type === MessageType.InitFailed) {
            clearTimeout(startTimer);
            reject(new Error(`model failed to load: ${m.body.message}`));
          } else if (m.type === MessageType.Result || m.type === MessageType.Error) {
            this.settle(m);
          }
        }
      });
      child.on('error', (err) => {
        clearTimeout(startTimer);
        reject(err);
        this.onExit(null, null);
      });
      child.on('exit', (code, signal) => {
        clearTimeout(startTimer);
        reject(new Error(`worker exited during start-up (code ${code}, signal ${signal})`));
        this.onExit(code, signal);
      });
    });
  }

  /** Analyse one unit. Rejects with WorkerRequestError. */
  run(meta: AnalyseMeta, frames: Buffer[]): Promise<ResultBody> {
    if (!this.ready || this.exited || !this.input) {
      return Promise.reject(new WorkerRequestError('crash', 'worker is not running'));
    }
    const id = this.nextId++;
    return new Promise<ResultBody>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new WorkerRequestError('timeout', `no answer within ${this.opts.requestTimeoutMs} ms`));
        this.timedOut = true;
        this.kill();
      }, this.opts.requestTimeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      // One writev for the whole message instead of a write per part.
      this.input!.cork();
      for (const part of encode({ type: MessageType.Analyse, id, meta, frames })) this.input!.write(part);
      this.input!.uncork();
    });
  }

  /** Ask the worker to exit after its current unit; kill it if it lingers. */
  stop(graceMs = 2000): Promise<void> {
    if (this.exited || !this.child) return Promise.resolve();
    return new Promise((resolve) => {
      this.once('exit', () => resolve());
      for (const part of encode({ type: MessageType.Shutdown, id: 0 })) this.input?.write(part);
      this.input?.end();
      setTimeout(() => this.kill(), graceMs).unref();
    });
  }

  kill(): void {
    if (!this.exited) this.child?.kill('SIGKILL');
  }

  private settle(m: Extract<Message, { type: MessageType.Result | MessageType.Error }>): void {
    const p = this.pending.get(m.id);
    if (!p) return; // answered after its timeout: already reported
    this.pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.type === MessageType.Result) {
      const ms = m.body.modelMs;
      if (Number.isFinite(ms)) this.modelMsAvg = this.modelMsAvg === Infinity ? ms : 0.9 * this.modelMsAvg + 0.1 * ms;
      p.resolve(m.body);
    }
    else p.reject(new WorkerRequestError('model', m.body.message));
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.exited) return;
    this.exited = true;
    this.ready = false;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new WorkerRequestError('crash', `worker exited (code ${code}, signal ${signal})`));
      this.pending.delete(id);
    }
    this.emit('exit', code, signal);
  }
}
