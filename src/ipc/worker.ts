import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from '../utils/logger.js';
import {
  CodecError,
  Decoder,
  encode,
  IPC_PROTOCOL_VERSION,
  MessageType,
  type AnalyseMeta,
  type FrameMeta,
  type Message,
  type OpenMeta,
  type ServerMessage,
} from './codec.js';
import {
  MAX_WORKER_MESSAGE_BYTES,
  parseError,
  parseFrameDone,
  parseInitFailed,
  parseReady,
  parseResult,
  ReplyError,
  type FrameDoneBody,
  type ResultBody,
  type ResultRequest,
} from './messages.js';
import { MODEL_DIR } from './python.js';
import { workerEnv } from './worker-env.js';

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
  request: ResultRequest & { streamed: boolean };
}

interface PendingFrame {
  seq: number;
  resolve: (r: FrameDoneBody) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * A unit at a worker, sent frame by frame: the worker does each frame's
 * work as it arrives and assembles the result when the unit is closed.
 */
export interface UnitStream {
  /** Send one frame; resolves once the worker has done its work. Rejects with WorkerRequestError. */
  frame(meta: FrameMeta, image: Buffer): Promise<FrameDoneBody>;
  /** No more frames: resolves with the unit's result. Rejects with WorkerRequestError. */
  close(closesWindow: boolean): Promise<ResultBody>;
}

const smooth = (avg: number, ms: number) => (avg === Infinity ? ms : 0.9 * avg + 0.1 * ms);

const notRunning = () => new WorkerRequestError('crash', 'worker is not running');

/** A line of worker output longer than this is cut: a worker printing without newlines must not grow the server's memory. */
const MAX_OUTPUT_LINE_CHARS = 16 * 1024;

/** Calls `onLine` with each line of `stream`, cut at `maxChars` (the rest of a longer line is dropped). */
export function eachLine(stream: Readable, maxChars: number, onLine: (line: string) => void): void {
  let partial = '';
  let cut = false;
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const parts = chunk.split('\n');
    for (let i = 0; i < parts.length; i++) {
      if (!cut) {
        partial += parts[i];
        if (partial.length > maxChars) {
          onLine(`${partial.slice(0, maxChars)} [line cut at ${maxChars} characters]`);
          partial = '';
          cut = true;
        }
      }
      if (i < parts.length - 1) {
        if (!cut) onLine(partial.endsWith('\r') ? partial.slice(0, -1) : partial);
        partial = '';
        cut = false;
      }
    }
  });
  stream.on('end', () => {
    if (partial && !cut) onLine(partial);
  });
}

/**
 * One Python worker process. Requests go out on fd 3 and answers come back
 * on fd 4; stdout and stderr are logged line by line. Emits `exit` once.
 *
 * Every message from the worker is checked (messages.ts) before anything
 * reads it. A worker that breaks the protocol (a corrupt stream, a body of
 * the wrong shape, an answer to no request) is not trusted with another
 * unit: the unit it was answering fails as a model error and the process
 * is killed, to be replaced by the pool (cause `bad_reply`).
 */
export class Worker extends EventEmitter {
  readonly slot: number;
  private child: ChildProcess | null = null;
  private input: Writable | null = null;
  private decoder = new Decoder(MAX_WORKER_MESSAGE_BYTES);
  private pending = new Map<number, Pending>();
  /** Frames sent and not acknowledged, per open unit, oldest first. */
  private pendingFrames = new Map<number, PendingFrame[]>();
  private nextId = 1;
  private exited = false;
  private log: Logger;
  private starting: { resolve: () => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | null = null;
  ready = false;
  /** Set when the server killed the process because a request timed out. */
  timedOut = false;
  /** Set when the server killed the process because it broke the IPC protocol. */
  badReply = false;
  info: { model: string; version: string; pid: number } | null = null;

  constructor(
    slot: number,
    private readonly opts: WorkerOptions,
  ) {
    super();
    this.slot = slot;
    this.log = opts.logger.child({ worker: slot });
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Requests sent and not answered yet: units awaiting their result and frames awaiting their work. */
  get inFlight(): number {
    let n = this.pending.size;
    for (const frames of this.pendingFrames.values()) n += frames.length;
    return n;
  }

  /** Smoothed model time per unit (RESULT.modelMs), ms; Infinity before the first answer. */
  modelMsAvg = Infinity;
  /** Smoothed model time per frame (FRAME_DONE.modelMs), ms; Infinity before the first. */
  frameMsAvg = Infinity;
  /** Smoothed model time of a unit's close (RESULT.modelMs less its frames'), ms; Infinity before the first. */
  closeMsAvg = Infinity;
  /** Model time of the frames of each open unit so far. */
  private framesMs = new Map<number, number>();
  /** Writes are held until the end of the tick (`send`). */
  private corked = false;

  get busy(): boolean {
    return this.inFlight > 0;
  }

  /** Spawn and wait for READY; rejects on INIT_FAILED, exit, a malformed message or timeout. */
  start(): Promise<void> {
    const { python, model, modelOptions, modelPath } = this.opts;
    const child = spawn(python, ['-m', 'jipjung_model.worker', '--model', model, '--options', modelOptions], {
      cwd: MODEL_DIR,
      env: workerEnv(process.env, [modelPath, MODEL_DIR]),
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
    });
    this.child = child;
    this.input = child.stdio[3] as Writable;
    const output = child.stdio[4] as Readable;
    const log = (this.log = this.opts.logger.child({ worker: this.slot, workerPid: child.pid }));
    for (const [stream, level] of [
      [child.stdout!, 'info'],
      [child.stderr!, 'warn'],
    ] as const) {
      const name = level === 'info' ? 'stdout' : 'stderr';
      eachLine(stream, MAX_OUTPUT_LINE_CHARS, (line) => log[level]({ event: 'worker_output', stream: name }, line));
    }
    // EPIPE when the child dies mid-write is reported by the exit path.
    this.input.on('error', () => {});
    output.on('error', () => {});

    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.startFailed(new Error(`worker did not become ready within ${this.opts.startTimeoutMs} ms`));
        this.kill();
      }, this.opts.startTimeoutMs);
      this.starting = { resolve, reject, timer };
      output.on('data', (chunk: Buffer) => this.receive(chunk));
      child.on('error', (err) => {
        this.startFailed(err);
        this.onExit(null, null);
      });
      child.on('exit', (code, signal) => {
        this.startFailed(new Error(`worker exited during start-up (code ${code}, signal ${signal})`));
        this.onExit(code, signal);
      });
    });
  }

  /** Analyse one unit sent whole (ANALYSE). Rejects with WorkerRequestError. */
  run(meta: AnalyseMeta, frames: Buffer[]): Promise<ResultBody> {
    if (!this.running) return Promise.reject(notRunning());
    const id = this.nextId++;
    const answer = this.awaitResult(id, { frames: frames.length, closesWindow: meta.closesWindow, streamed: false });
    this.send({ type: MessageType.Analyse, id, meta, frames });
    return answer;
  }

  /**
   * Open a unit whose frames follow one by one (OPEN, FRAME…, CLOSE). The
   * worker holds the unit's state until it is closed; if the worker dies
   * first, every pending frame and the close fail as a crash.
   */
  open(meta: OpenMeta): UnitStream {
    const id = this.nextId++;
    let sent = 0;
    let closed = false;
    if (this.running) this.send({ type: MessageType.Open, id, body: meta });
    return {
      frame: (frameMeta, image) => {
        if (closed) return Promise.reject(new Error('a frame for a unit already closed'));
        if (!this.running) return Promise.reject(notRunning());
        sent++;
        const done = this.awaitFrame(id, frameMeta.seq);
        this.send({ type: MessageType.Frame, id, meta: frameMeta, frames: [image] });
        return done;
      },
      close: (closesWindow) => {
        if (closed) return Promise.reject(new Error('a unit closed twice'));
        closed = true;
        if (!this.running) return Promise.reject(notRunning());
        const answer = this.awaitResult(id, { frames: sent, closesWindow, streamed: true });
        this.send({ type: MessageType.Close, id, body: { closesWindow } });
        return answer;
      },
    };
  }

  private get running(): boolean {
    return this.ready && !this.exited && this.input !== null;
  }

  private send(message: ServerMessage): void {
    // Everything sent in one tick goes in one writev (a unit's OPEN and first FRAME, its last FRAME and
    // CLOSE, the frames a scheduling pass sends): each write to the pipe wakes the worker, and on a small
    // machine that wake-up costs more than the copy.
    const input = this.input!;
    if (!this.corked) {
      this.corked = true;
      input.cork();
      process.nextTick(() => {
        this.corked = false;
        input.uncork();
      });
    }
    for (const part of encode(message)) input.write(part);
  }

  /** A request not answered in time means a hung worker: it is killed, and whatever else it held fails as a crash. */
  private timeout(reject: (e: Error) => void): NodeJS.Timeout {
    return setTimeout(() => {
      reject(new WorkerRequestError('timeout', `no answer within ${this.opts.requestTimeoutMs} ms`));
      this.timedOut = true;
      this.kill();
    }, this.opts.requestTimeoutMs);
  }

  private awaitResult(id: number, request: Pending['request']): Promise<ResultBody> {
    return new Promise<ResultBody>((resolve, reject) => {
      const timer = this.timeout((e) => {
        this.pending.delete(id);
        reject(e);
      });
      this.pending.set(id, { resolve, reject, timer, request });
    });
  }

  private awaitFrame(id: number, seq: number): Promise<FrameDoneBody> {
    return new Promise<FrameDoneBody>((resolve, reject) => {
      let frames = this.pendingFrames.get(id);
      if (!frames) this.pendingFrames.set(id, (frames = []));
      const entry: PendingFrame = {
        seq,
        resolve,
        reject,
        timer: this.timeout((e) => {
          this.dropFrame(id, entry);
          reject(e);
        }),
      };
      frames.push(entry);
    });
  }

  private dropFrame(id: number, entry: PendingFrame): void {
    const frames = this.pendingFrames.get(id);
    if (!frames) return;
    const i = frames.indexOf(entry);
    if (i >= 0) frames.splice(i, 1);
    if (frames.length === 0) this.pendingFrames.delete(id);
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

  private receive(chunk: Buffer): void {
    if (this.badReply) return;
    let messages: Message[];
    try {
      messages = this.decoder.push(chunk);
    } catch (err) {
      this.brokeProtocol(err instanceof CodecError ? `corrupt stream: ${err.message}` : `undecodable stream (${(err as Error).name})`);
      return;
    }
    for (const m of messages) {
      try {
        this.handle(m);
      } catch (err) {
        if (!(err instanceof ReplyError)) throw err;
        this.brokeProtocol(err.message, m.id);
      }
      if (this.badReply) return;
    }
  }

  /** One decoded message; throws ReplyError when it is not one the protocol allows here. */
  private handle(m: Message): void {
    switch (m.type) {
      case MessageType.Ready: {
        if (!this.starting) throw new ReplyError('READY from a worker that is already started');
        const body = parseReady(m.body);
        if (body.protocol !== IPC_PROTOCOL_VERSION) {
          this.startFailed(
            new Error(`worker speaks IPC protocol ${body.protocol}, the server ${IPC_PROTOCOL_VERSION}: the model package and the server do not match`),
          );
          this.kill();
          return;
        }
        this.ready = true;
        this.info = { model: body.model, version: body.version, pid: body.pid };
        this.started();
        return;
      }
      case MessageType.InitFailed: {
        if (!this.starting) throw new ReplyError('INIT_FAILED from a worker that is already started');
        this.startFailed(new Error(`model failed to load: ${parseInitFailed(m.body).message}`));
        return;
      }
      case MessageType.Result:
      case MessageType.Error:
        this.settle(m);
        return;
      case MessageType.FrameDone:
        this.frameDone(m.id, m.body);
        return;
      default:
        throw new ReplyError(`${MessageType[m.type].toUpperCase()} is not a message a worker sends`);
    }
  }

  private settle(m: Extract<Message, { type: MessageType.Result | MessageType.Error }>): void {
    const p = this.pending.get(m.id);
    if (!p) {
      if (this.timedOut) return; // answered after its timeout: already reported
      throw new ReplyError(`${MessageType[m.type].toUpperCase()} for request ${m.id}, which awaits no answer`);
    }
    // Checked before the request is settled: a malformed answer fails it as a model error.
    const outcome = m.type === MessageType.Result ? parseResult(m.body, p.request) : parseError(m.body);
    this.pending.delete(m.id);
    clearTimeout(p.timer);
    const framesMs = this.framesMs.get(m.id);
    this.framesMs.delete(m.id);
    if ('modelMs' in outcome) {
      const ms = outcome.modelMs;
      this.modelMsAvg = smooth(this.modelMsAvg, ms);
      if (p.request.streamed) this.closeMsAvg = smooth(this.closeMsAvg, Math.max(0, ms - (framesMs ?? 0)));
      p.resolve(outcome);
    } else p.reject(new WorkerRequestError('model', outcome.message));
  }

  private frameDone(id: number, body: unknown): void {
    const frames = this.pendingFrames.get(id);
    if (!frames || frames.length === 0) {
      if (this.timedOut) return; // acknowledged after its timeout: already reported
      throw new ReplyError(`FRAME_DONE for unit ${id}, which awaits no frame`);
    }
    const p = frames[0];
    const done = parseFrameDone(body, p.seq);
    this.dropFrame(id, p);
    clearTimeout(p.timer);
    this.frameMsAvg = smooth(this.frameMsAvg, done.modelMs);
    this.framesMs.set(id, (this.framesMs.get(id) ?? 0) + done.modelMs);
    p.resolve(done);
  }

  /**
   * The worker sent what the protocol does not allow. The request it names,
   * or else the oldest one (a worker answers in order), fails as a model
   * error; the others fail as a crash when the process exits, and go to
   * another worker.
   */
  private brokeProtocol(reason: string, id?: number): void {
    if (this.badReply) return;
    this.badReply = true;
    this.ready = false;
    this.log.warn({ event: 'worker_bad_reply', reason }, 'the worker broke the IPC protocol; replacing it');
    const named = id !== undefined && (this.pending.has(id) || this.pendingFrames.has(id));
    const victim = named ? id : (this.pendingFrames.keys().next().value ?? this.pending.keys().next().value);
    if (victim !== undefined) {
      const failure = new WorkerRequestError('model', `malformed reply from the worker: ${reason}`);
      for (const f of this.pendingFrames.get(victim) ?? []) {
        clearTimeout(f.timer);
        f.reject(failure);
      }
      this.pendingFrames.delete(victim);
      const p = this.pending.get(victim);
      if (p) {
        this.pending.delete(victim);
        clearTimeout(p.timer);
        p.reject(failure);
      }
    }
    this.startFailed(new Error(`malformed message from the worker during start-up: ${reason}`));
    this.kill();
  }

  private started(): void {
    const s = this.starting;
    if (!s) return;
    this.starting = null;
    clearTimeout(s.timer);
    s.resolve();
  }

  private startFailed(err: Error): void {
    const s = this.starting;
    if (!s) return;
    this.starting = null;
    clearTimeout(s.timer);
    s.reject(err);
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.exited) return;
    this.exited = true;
    this.ready = false;
    const crash = () => new WorkerRequestError('crash', `worker exited (code ${code}, signal ${signal})`);
    for (const frames of this.pendingFrames.values()) {
      for (const f of frames) {
        clearTimeout(f.timer);
        f.reject(crash());
      }
    }
    this.pendingFrames.clear();
    this.framesMs.clear();
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(crash());
      this.pending.delete(id);
    }
    this.emit('exit', code, signal);
  }
}
